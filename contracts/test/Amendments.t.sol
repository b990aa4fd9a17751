// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";
import {Receipts} from "./utils/Receipts.sol";

/// @notice Amended jobs: a client replaces a dead hop mid-answer with a signed amendment; the
/// survivors are paid once for every position, the dead hop for the positions before the
/// amendment, the replacement for all of them (its replay included). One proof-of-concept test
/// per way a client, a node or a stranger could abuse an amendment sits beside the check
/// that stops it.
contract AmendmentsTest is DisputeFixture {
    using Receipts for Receipts.Receipt[];

    uint256 internal constant PRICE2 = 2e12;
    address internal spare = address(uint160(0x1100));
    address internal spare2 = address(uint160(0x1101));

    IJobMarket.Job internal job;
    bytes32 internal jobHash;

    function setUp() public override {
        super.setUp();
        _fund(spare, 1_000e18);
        _fund(spare2, 1_000e18);
        vm.prank(spare);
        registry.stake(MIN_STAKE, _config(10, 20, PRICE2));
        vm.prank(spare2);
        registry.stake(MIN_STAKE, _config(10, 20, PRICE));
        job = _job(client, 1);
        job.maxPricePerToken = PRICE2;
        jobHash = market.hashJob(job);
    }

    function _amendment(uint8 hop, address replacement, uint32 from)
        internal
        pure
        returns (IJobMarket.Amendment memory)
    {
        return IJobMarket.Amendment(hop, replacement, from);
    }

    function _one(IJobMarket.Amendment memory a) internal pure returns (IJobMarket.Amendment[] memory list) {
        list = new IJobMarket.Amendment[](1);
        list[0] = a;
    }

    function _signAll(bytes32 forJob, IJobMarket.Amendment[] memory list, uint256 key)
        internal
        view
        returns (bytes[] memory sigs)
    {
        sigs = new bytes[](list.length);
        for (uint256 i = 0; i < list.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, market.hashAmendment(forJob, list[i]));
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    function _submitAmended(address submitter, IJobMarket.Amendment[] memory list, bytes[] memory sigs, uint32 served)
        internal
    {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(submitter);
        market.submitAmended(job, sig, list, sigs, served, keccak256("receipts"));
    }

    function _submitAmended(IJobMarket.Amendment[] memory list, uint32 served) internal {
        _submitAmended(nodes[2], list, _signAll(jobHash, list, CLIENT_KEY), served);
    }

    // -------------------------------------------------------------------- honest

    function testAmendedJobPaysEachHolderForItsPositions() public {
        uint256 escrowBefore = market.escrowOf(client);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobAmended(jobHash, 1, spare, 6, 3);
        _submitAmended(_one(_amendment(1, spare, 6)), 10);

        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertEq(rec.hops.length, 4, "route hops, then the replacement");
        assertEq(rec.hops[3], spare, "replacement last");
        assertEq(rec.amounts[0], 10 * 10 * PRICE, "hop 0 served every position");
        assertEq(rec.amounts[1], 6 * 10 * PRICE, "the dead hop served the positions before the amendment");
        assertEq(rec.amounts[2], 10 * 10 * PRICE, "hop 2 served every position");
        assertEq(rec.amounts[3], 10 * 10 * PRICE2, "the replacement replayed six positions and served four");
        uint256 cost = 20 * 10 * PRICE + 6 * 10 * PRICE + 10 * 10 * PRICE2;
        assertEq(rec.cost, cost, "cost is the sum");
        assertEq(escrowBefore - market.escrowOf(client), cost, "escrow charged once");
        assertEq(market.replacementsOf(jobHash), 1, "one replacement");

        vm.prank(other);
        market.fundRewards(1e18);
        vm.warp(block.timestamp + 1 hours);
        uint256[4] memory before =
            [token.balanceOf(nodes[0]), token.balanceOf(nodes[1]), token.balanceOf(nodes[2]), token.balanceOf(spare)];
        market.finalize(jobHash);
        // Rewards split by layer-positions: 100, 60, 100 and 100 of 360.
        uint256 target = 10 * 1e15;
        assertEq(token.balanceOf(nodes[0]) - before[0], rec.amounts[0] + target * 100 / 360, "hop 0 paid");
        assertEq(token.balanceOf(nodes[1]) - before[1], rec.amounts[1] + target * 60 / 360, "dead hop paid");
        assertEq(token.balanceOf(nodes[2]) - before[2], rec.amounts[2] + target * 100 / 360, "hop 2 paid");
        assertEq(token.balanceOf(spare) - before[3], rec.amounts[3] + target * 100 / 360, "replacement paid");
        _assertConserved(_with(spare));
    }

    /// @dev What the issue asks of a paid failover: no more than the unbroken answer plus the
    /// replacement's replay, where restarting as a new job re-bills every hop for the history.
    function testAFailoverCostsOnlyTheReplay() public {
        uint32 served = 40;
        uint32 from = 25;
        uint256 unbroken = uint256(served) * 30 * PRICE;
        _submitAmended(_one(_amendment(1, spare2, from)), served);
        uint256 cost = market.getJob(jobHash).cost;
        assertEq(cost, unbroken + uint256(from) * 10 * PRICE, "unbroken answer plus the replay of one span");
        uint256 restarted = uint256(from) * 30 * PRICE + uint256(served) * 30 * PRICE;
        assertTrue(cost < restarted, "cheaper than a new job that replays every hop");
    }

    function testTheReplacementMaySubmit() public {
        _submitAmended(spare, _one(_amendment(1, spare, 6)), _signAll(jobHash, _one(_amendment(1, spare, 6)), CLIENT_KEY), 10);
        assertEq(market.getJob(jobHash).submitter, spare, "replacement submitted");
    }

    function testAHopReplacedTwicePaysEachHolderItsStretch() public {
        IJobMarket.Amendment[] memory list = new IJobMarket.Amendment[](2);
        list[0] = _amendment(1, spare, 4);
        list[1] = _amendment(1, spare2, 8);
        _submitAmended(list, 10);
        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertEq(rec.amounts[1], 4 * 10 * PRICE, "first holder to position 4");
        assertEq(rec.amounts[3], 8 * 10 * PRICE2, "second holder to position 8, replay included");
        assertEq(rec.amounts[4], 10 * 10 * PRICE, "third holder to the end, replay included");
    }

    function testTwoHopsReplaced() public {
        vm.prank(other);
        registry.stake(MIN_STAKE, _config(20, 30, PRICE));
        IJobMarket.Amendment[] memory list = new IJobMarket.Amendment[](2);
        list[0] = _amendment(1, spare, 3);
        list[1] = _amendment(2, other, 7);
        _submitAmended(nodes[0], list, _signAll(jobHash, list, CLIENT_KEY), 10);
        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertEq(rec.amounts[1], 3 * 10 * PRICE, "hop 1 to position 3");
        assertEq(rec.amounts[2], 7 * 10 * PRICE, "hop 2 to position 7");
        assertEq(rec.hops[4], other, "hop 2's replacement");
    }

    // ------------------------------------------------- proofs of concept, fixed

    /// @dev Attack: a node invents a replacement to be paid twice, or to pay a friend.
    function testForgedAmendmentIsRefused() public {
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 0));
        bytes[] memory forged = _signAll(jobHash, list, OTHER_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendmentSignature.selector, 0));
        vm.prank(spare);
        market.submitAmended(job, sig, list, forged, 10, keccak256("receipts"));
    }

    /// @dev Attack: an amendment the client signed for one job is replayed onto another.
    function testAmendmentOfAnotherJobIsRefused() public {
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 2));
        bytes32 otherJob = market.hashJob(_job(client, 99));
        bytes[] memory sigs = _signAll(otherJob, list, CLIENT_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendmentSignature.selector, 0));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    /// @dev Attack: a route node named as a replacement would be paid twice for its span.
    function testANodeCannotHoldTwoPlacesInARecord() public {
        IJobMarket.Amendment[] memory list = _one(_amendment(1, nodes[0], 2));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 0));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));

        list = new IJobMarket.Amendment[](2);
        list[0] = _amendment(1, spare, 2);
        list[1] = _amendment(1, spare, 5); // the same replacement twice
        sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 1));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    /// @dev Attack: a replacement that does not serve the hop's span (or model, or price cap)
    /// is paid for work it could not have done.
    function testReplacementMustServeTheHopsSpanUnderTheCap() public {
        IJobMarket.Amendment[] memory list = _one(_amendment(0, spare, 2)); // spare serves 10:20
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, spare, 0, 10));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));

        job.maxPricePerToken = PRICE; // spare charges PRICE2
        jobHash = market.hashJob(job);
        list = _one(_amendment(1, spare, 2));
        sigs = _signAll(jobHash, list, CLIENT_KEY);
        sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.PriceAboveCap.selector, spare, PRICE2, PRICE));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    /// @dev Attack: an amendment past the tokens served, or two for one hop out of order,
    /// would pay a holder for positions it never reached.
    function testAmendmentsMustBeOrderedAndWithinTheTokensServed() public {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 11));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 0));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));

        list = _one(_amendment(3, spare, 1)); // no hop 3
        sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 0));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));

        list = new IJobMarket.Amendment[](2);
        list[0] = _amendment(1, spare, 6);
        list[1] = _amendment(1, spare2, 6); // not after the first
        sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 1));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));

        vm.prank(other);
        registry.stake(MIN_STAKE, _config(0, 10, PRICE));
        list[0] = _amendment(1, spare, 6);
        list[1] = _amendment(0, other, 2); // hops out of order
        sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 1));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    function testAmendmentCountsAreBounded() public {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        IJobMarket.Amendment[] memory none = new IJobMarket.Amendment[](0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 0));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, none, new bytes[](0), 10, keccak256("receipts"));

        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 2));
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 1));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, new bytes[](2), 10, keccak256("receipts"));

        IJobMarket.Amendment[] memory many = new IJobMarket.Amendment[](17);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidAmendment.selector, 17));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, many, new bytes[](17), 10, keccak256("receipts"));
    }

    /// @dev Attack: a stranger submits someone's amended job (to grief its timing).
    function testOnlyRouteNodesAndReplacementsSubmit() public {
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 2));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRouteNode.selector, other));
        vm.prank(other);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    /// @dev Attack: the same job settled once amended and once plain pays twice.
    function testAnAmendedJobIsSettledOnce() public {
        _submitAmended(_one(_amendment(1, spare, 2)), 10);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobAlreadySubmitted.selector, jobHash));
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 10, keccak256("receipts"));
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare2, 2));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobAlreadySubmitted.selector, jobHash));
        vm.prank(nodes[0]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    function testEscrowMustCoverTheAmendedCost() public {
        // 10 positions over 30 layers, plus the replay: the client holds just less.
        uint256 cost = 20 * 10 * PRICE + 6 * 10 * PRICE + 10 * 10 * PRICE2;
        uint256 have = market.escrowOf(client);
        vm.prank(client);
        market.requestWithdrawal(have - cost + 1);
        vm.warp(block.timestamp + 2 days);
        vm.prank(client);
        market.withdraw();
        job.deadline = uint64(block.timestamp + 1 hours);
        jobHash = market.hashJob(job);
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 6));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InsufficientEscrow.selector, client, cost - 1, cost));
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 10, keccak256("receipts"));
    }

    // ------------------------------------------------------------------ disputes

    /// @dev The commitment's receipts name route hops 0..2 whoever served them; the walk
    /// counts route hops, not record hops, so an honest amended charge is no over-charge.
    function testOverchargeProofsWalkTheRoutesHops() public {
        bytes memory blob = Receipts.chain(jobHash, 3, Receipts.steps(5, 3)).encode();
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 6));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes32 commitment = Receipts.commitment(blob);
        vm.prank(nodes[2]);
        market.submitAmended(job, sig, list, sigs, 8, commitment);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoOvercharge.selector, uint32(8), uint32(8)));
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);
    }

    function testOverchargedAmendedJobIsOverturned() public {
        bytes memory blob = Receipts.chain(jobHash, 3, Receipts.steps(5, 3)).encode();
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        IJobMarket.Amendment[] memory list = _one(_amendment(1, spare, 6));
        bytes[] memory sigs = _signAll(jobHash, list, CLIENT_KEY);
        bytes32 commitment = Receipts.commitment(blob);
        uint256 escrowBefore = market.escrowOf(client);
        vm.prank(spare);
        market.submitAmended(job, sig, list, sigs, 12, commitment);
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
        assertEq(market.escrowOf(client), escrowBefore, "client refunded in full");
        assertEq(registry.getNode(spare).stake, MIN_STAKE - 50e18, "the submitting replacement slashed");
        _assertConserved(_with(spare));
    }

    /// @dev A dispute names a record hop: here the replacement, which alone is slashed; the
    /// dead hop and the survivors are compensated from the slash.
    function testADisputeOnTheReplacementSlashesOnlyIt() public {
        _submitAmended(_one(_amendment(1, spare, 6)), 10);
        vm.prank(verifiers[0]);
        court.openDispute(jobHash, 3, FAULT, EVIDENCE, BOND);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Disputed, "frozen");
        address[] memory hops = market.hopsOf(jobHash);
        assertEq(hops.length, 4, "the record's hops");
        assertEq(hops[3], spare, "the accused");
        uint256 escrowBefore = market.escrowOf(client);
        uint256[3] memory before = [token.balanceOf(nodes[0]), token.balanceOf(nodes[1]), token.balanceOf(nodes[2])];
        _judge(jobHash, _unanimous(3, true));
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
        assertEq(registry.getNode(spare).stake, MIN_STAKE - 50e18, "the replacement slashed");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(registry.getNode(nodes[i]).stake, MIN_STAKE, "no other hop slashed");
        }
        assertEq(token.balanceOf(nodes[1]) - before[1], 6 * 10 * PRICE, "the dead hop compensated for its six");
        assertEq(token.balanceOf(nodes[0]) - before[0], 10 * 10 * PRICE, "hop 0 compensated");
        assertEq(market.escrowOf(client) - escrowBefore, market.getJob(jobHash).cost, "client refunded");
        _assertConserved(_with(spare));
    }

    function testDisputesNameRecordHops() public {
        _submitAmended(_one(_amendment(1, spare, 6)), 10);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidHop.selector, 4, 4));
        vm.prank(address(court));
        market.freeze(jobHash, 4);
    }

    // ---------------------------------------------------------------------- fuzz

    /// @dev Any amendment: the cost is the unbroken answer plus the replay of the replaced
    /// span, never above what the client signed for plus that replay; finalising moves
    /// exactly the cost.
    function testFuzzAmendedCostIsTheAnswerPlusTheReplay(uint32 served, uint32 from, bool second, uint32 from2)
        public
    {
        served = uint32(bound(served, 1, 64));
        from = uint32(bound(from, 0, served));
        IJobMarket.Amendment[] memory list = new IJobMarket.Amendment[](second && from < served ? 2 : 1);
        list[0] = _amendment(1, spare, from);
        uint256 expected = uint256(served) * 20 * PRICE + uint256(from) * 10 * PRICE;
        if (list.length == 2) {
            from2 = uint32(bound(from2, from + 1, served));
            list[1] = _amendment(1, spare2, from2);
            expected += uint256(from2) * 10 * PRICE2 + uint256(served) * 10 * PRICE;
        } else {
            expected += uint256(served) * 10 * PRICE2;
        }
        uint256 escrowBefore = market.escrowOf(client);
        _submitAmended(list, served);
        assertEq(market.getJob(jobHash).cost, expected, "cost");
        assertEq(escrowBefore - market.escrowOf(client), expected, "charged once");
        uint256 cap = uint256(served) * 30 * PRICE2 + uint256(list.length == 2 ? from2 : from) * 10 * PRICE2 * 2;
        assertLe(expected, cap, "within the signed cap plus the replays");
        vm.warp(block.timestamp + 1 hours);
        uint256 marketBefore = token.balanceOf(address(market));
        market.finalize(jobHash);
        assertEq(marketBefore - token.balanceOf(address(market)), expected, "finalize moves exactly the cost");
        assertEq(market.totalLocked(), 0, "unlocked");
        address[] memory all = new address[](2);
        (all[0], all[1]) = (spare, spare2);
        _assertConserved(_withAll(all));
    }

    function _withAll(address[] memory extra) internal view returns (address[] memory all) {
        address[] memory actors = _actors();
        all = new address[](actors.length + extra.length);
        for (uint256 i = 0; i < actors.length; ++i) {
            all[i] = actors[i];
        }
        for (uint256 i = 0; i < extra.length; ++i) {
            all[actors.length + i] = extra[i];
        }
    }

    function _with(address extra) internal view returns (address[] memory all) {
        address[] memory list = new address[](2);
        (list[0], list[1]) = (extra, extra == spare ? spare2 : spare);
        return _withAll(list);
    }
}
