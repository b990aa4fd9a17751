// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";
import {Receipts} from "./utils/Receipts.sol";

/// @notice Over-charge proofs: the committed receipts, walked on chain, prove fewer positions
/// than the submitter charged.
contract OverchargeTest is DisputeFixture {
    using Receipts for Receipts.Receipt[];

    IJobMarket.Job internal job;
    bytes32 internal jobHash;

    function setUp() public override {
        super.setUp();
        job = _job(client, 1);
        jobHash = market.hashJob(job);
    }

    /// @dev A five-position prompt then three generated tokens: eight positions over three hops.
    function _honest() internal view returns (Receipts.Receipt[] memory) {
        return Receipts.chain(jobHash, 3, Receipts.steps(5, 3));
    }

    function _commitAs(address submitter, bytes memory blob, uint32 served) internal {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        bytes32 commitment = Receipts.commitment(blob); // before the prank: sha256 is a call
        vm.prank(submitter);
        market.submitResult(job, sig, served, commitment);
    }

    function _proven(Receipts.Receipt[] memory rs) internal view returns (uint32 proven) {
        bytes memory blob = rs.encode();
        bytes32 commitment;
        (proven, commitment) = market.provenPositions(jobHash, 3, blob);
        assertEq(commitment, Receipts.commitment(blob), "the commitment is hashed the same way");
    }

    // -------------------------------------------------------------------- honest

    function testHonestChargeIsNoOvercharge() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[0], blob, 8);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoOvercharge.selector, uint32(8), uint32(8)));
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "untouched");
    }

    function testChargingLessThanProvenIsNoOvercharge() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[0], blob, 6);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoOvercharge.selector, uint32(8), uint32(6)));
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);
    }

    // ---------------------------------------------------------------- overcharge

    function testOverchargeOverturnsTheJobAtTheSubmittersHop() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[2], blob, 12);
        uint256 hopAmount = 12 * 10 * PRICE;
        uint256 bounty = (50e18 - 2 * hopAmount) * 2_000 / 10_000;

        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.OverchargeProven(jobHash, other, 8, 12);
        vm.expectEmit(true, true, true, true, address(registry));
        emit INodeRegistry.NodeSlashed(nodes[2], 50e18, 50e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobChallenged(jobHash, nodes[2], 2, 50e18, bounty);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.HopCompensated(jobHash, nodes[0], hopAmount);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.HopCompensated(jobHash, nodes[1], hopAmount);
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);

        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
        assertEq(token.balanceOf(other), 1_000e18 + bounty, "the prover takes the bounty");
        assertEq(market.escrowOf(client), 100e18, "client refunded");
        assertEq(registry.getNode(nodes[2]).stake, 50e18, "submitter slashed");
        assertEq(token.balanceOf(nodes[0]), 900e18 + hopAmount, "hop 0 paid for its work");
        assertEq(token.balanceOf(nodes[1]), 900e18 + hopAmount, "hop 1 paid for its work");
        assertEq(market.rewardPool(), 50e18 - 2 * hopAmount - bounty, "the rest to the pool");
        _assertConserved(_actors());

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.proveOvercharge(jobHash, blob);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.finalize(jobHash);
    }

    function testSubmitterWhoseCommittedChainBreaksIsOverturned() public {
        Receipts.Receipt[] memory rs = _honest();
        rs[2 * 3 + 1].input = keccak256("not hop 0's output"); // step 2 breaks at hop 1
        bytes memory blob = rs.encode();
        _commitAs(nodes[0], blob, 8);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.OverchargeProven(jobHash, verifiers[3], 6, 8);
        vm.prank(verifiers[3]);
        market.proveOvercharge(jobHash, blob);
        assertEq(registry.getNode(nodes[0]).stake, 50e18, "submitter slashed");
    }

    function testCommitmentToNoReceiptsProvesNothing() public {
        _commitAs(nodes[0], "", 1);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.OverchargeProven(jobHash, other, 0, 1);
        vm.prank(other);
        market.proveOvercharge(jobHash, "");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned");
    }

    // -------------------------------------------------------------------- errors

    function testReceiptsOtherThanTheCommittedOnesMismatch() public {
        Receipts.Receipt[] memory rs = _honest();
        _commitAs(nodes[0], rs.encode(), 12);
        bytes memory mismatch = abi.encodeWithSelector(IJobMarket.ReceiptsMismatch.selector, jobHash);

        vm.expectRevert(mismatch);
        market.proveOvercharge(jobHash, Receipts.chain(jobHash, 3, Receipts.steps(5, 1)).encode());
        vm.expectRevert(mismatch);
        market.proveOvercharge(jobHash, rs.without(rs.length - 1).encode()); // a receipt short
        vm.expectRevert(mismatch);
        market.proveOvercharge(jobHash, "");

        (rs[0], rs[1]) = (rs[1], rs[0]); // the same receipts in another order
        vm.expectRevert(mismatch);
        market.proveOvercharge(jobHash, rs.encode());
    }

    function testReceiptsNotWholeAreMalformed() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[0], blob, 12);
        bytes memory short = Receipts.slice(blob, 0, 176);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReceiptsMalformed.selector, uint256(176)));
        market.proveOvercharge(jobHash, short);
        bytes memory long = bytes.concat(blob, hex"00");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReceiptsMalformed.selector, blob.length + 1));
        market.proveOvercharge(jobHash, long);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReceiptsMalformed.selector, uint256(176)));
        market.provenPositions(jobHash, 3, short);
    }

    function testProveOverchargeNeedsAPendingJobInsideItsWindow() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, jobHash));
        market.proveOvercharge(jobHash, "");

        bytes memory blob = _honest().encode();
        _commitAs(nodes[0], blob, 12);
        _open(jobHash, 1, FAULT, verifiers[0], BOND);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.proveOvercharge(jobHash, blob); // frozen by the dispute

        _judge(jobHash, _unanimous(3, false));
        uint256 endsAt = uint256(market.getJob(jobHash).submittedAt) + 1 hours;
        assertTrue(block.timestamp < endsAt, "released inside the window");
        vm.prank(other);
        market.proveOvercharge(jobHash, blob); // released inside the window: provable again
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned after release");
    }

    function testProveOverchargeClosesWithTheWindow() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[0], blob, 12);
        uint256 endsAt = block.timestamp + 1 hours;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobHash, endsAt));
        market.proveOvercharge(jobHash, blob);
    }

    /// A decoy dispute (against an honest hop) that outlasts the challenge window must not
    /// shield the submitter's over-charge: its rejection opens the window again.
    function testADecoyDisputeCannotRunOutTheWindowOfAnOverchargeProof() public {
        bytes memory blob = _honest().encode();
        _commitAs(nodes[2], blob, 12);
        _open(jobHash, 0, FAULT, verifiers[0], BOND);
        vm.roll(court.getDispute(jobHash).drawBlock + 1);
        court.drawJury(jobHash);
        address[] memory jurors = _jurors(jobHash);
        for (uint256 i = 0; i < jurors.length; ++i) {
            _commit(jobHash, jurors[i], false);
        }
        vm.warp(block.timestamp + 70 minutes); // past the first window, inside the reveals
        for (uint256 i = 0; i < jurors.length; ++i) {
            _reveal(jobHash, jurors[i], false);
        }
        court.resolve(jobHash);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "released");
        vm.prank(other);
        market.proveOvercharge(jobHash, blob);
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "overturned after all");
        _assertConserved(_actors());
    }

    // ------------------------------------------------------------ the walk itself

    function testHonestChainProvesEveryPosition() public view {
        assertEq(_proven(_honest()), 8, "5 + 1 + 1 + 1");
        Receipts.Receipt[] memory one = Receipts.chain(jobHash, 1, Receipts.steps(3, 2));
        (uint32 proven,) = market.provenPositions(jobHash, 1, one.encode());
        assertEq(proven, 5, "one hop");
    }

    function testWrongJobIdProvesOnlyTheStepsBefore() public view {
        Receipts.Receipt[] memory rs = _honest();
        rs[2 * 3 + 1].jobId = keccak256("another job");
        assertEq(_proven(rs), 6, "steps 0 and 1");
        rs = _honest();
        rs[0].jobId = keccak256("another job");
        assertEq(_proven(rs), 0, "nothing");
    }

    function testWrongHopOrderProvesOnlyTheStepsBefore() public view {
        Receipts.Receipt[] memory rs = _honest();
        (rs[4], rs[5]) = (rs[5], rs[4]); // step 1: hop 2 before hop 1
        assertEq(_proven(rs), 5, "step 0 only");
    }

    function testInputThatIsNotThePreviousOutputBreaksTheChain() public view {
        Receipts.Receipt[] memory rs = _honest();
        rs[3 * 3 + 2].input = rs[3 * 3].output; // step 3, hop 2 reads hop 0's output
        assertEq(_proven(rs), 7, "steps 0 to 2");
    }

    function testStartThatDoesNotContinueBreaksTheChain() public view {
        Receipts.Receipt[] memory rs = _honest();
        for (uint256 h = 0; h < 3; ++h) {
            rs[2 * 3 + h].start += 1; // step 2 skips a position
        }
        assertEq(_proven(rs), 6, "steps 0 and 1");
        rs = _honest();
        for (uint256 h = 0; h < 3; ++h) {
            rs[h].start = 1; // the first step does not start at 0
        }
        assertEq(_proven(rs), 0, "nothing");
    }

    function testMissingHopProvesOnlyTheCompleteSteps() public view {
        Receipts.Receipt[] memory rs = _honest();
        assertEq(_proven(rs.without(rs.length - 1)), 7, "a trailing step missing its last hop");
        assertEq(_proven(rs.without(4)), 5, "step 1 missing hop 1");
    }

    function testOtherBreaksProveOnlyTheStepsBefore() public view {
        Receipts.Receipt[] memory rs = _honest();
        for (uint256 h = 0; h < 3; ++h) {
            rs[2 * 3 + h].step = 1; // step numbers must rise
        }
        assertEq(_proven(rs), 6, "a repeated step number");

        rs = _honest();
        rs[1 * 3 + 2].positions = 2;
        assertEq(_proven(rs), 5, "hops disagree on the positions");

        rs = _honest();
        rs[1 * 3 + 2].start = 6;
        assertEq(_proven(rs), 5, "hops disagree on the start");

        rs = _honest();
        rs[2 * 3 + 1].step = 3;
        assertEq(_proven(rs), 6, "hops disagree on the step");

        uint32[] memory positions = Receipts.steps(5, 1);
        positions[1] = 0;
        assertEq(_proven(Receipts.chain(jobHash, 3, positions)), 5, "a step of no position");

        (uint32 proven,) = market.provenPositions(jobHash, 2, _honest().encode());
        assertEq(proven, 5, "walked as two hops: step 0's first two chain, then hop 2 sits where hop 0 must");
        (proven,) = market.provenPositions(jobHash, 0, _honest().encode());
        assertEq(proven, 0, "no hops prove nothing");
    }

    function testStepNumbersNeedNotBeConsecutive() public view {
        Receipts.Receipt[] memory rs = _honest();
        for (uint256 h = 0; h < 3; ++h) {
            rs[3 * 3 + h].step = 40;
        }
        assertEq(_proven(rs), 8, "rising is enough");
    }

    function testProvenPositionsSaturateAtTheTokenCounter() public view {
        uint32[] memory positions = new uint32[](2);
        (positions[0], positions[1]) = (type(uint32).max, 5);
        (uint32 proven,) = market.provenPositions(jobHash, 1, Receipts.chain(jobHash, 1, positions).encode());
        assertEq(proven, type(uint32).max, "capped at uint32");
    }

    // ---------------------------------------------------------------------- fuzz

    /// Any number of steps, any sizes, a break anywhere (or none), any charge: the job is
    /// overturned exactly when the charge is above what the chain before the break proves.
    function testFuzzOverchargeProof(uint256 seed, uint32 served) public {
        uint256 steps = bound(seed, 1, 5);
        uint32[] memory positions = new uint32[](steps);
        uint256 breakAt = bound(seed >> 8, 0, steps); // `steps`: no break
        uint32 proven = 0;
        for (uint256 s = 0; s < steps; ++s) {
            positions[s] = uint32(bound(seed >> (16 + 8 * s), 1, 12));
            if (s < breakAt) proven += positions[s];
        }
        Receipts.Receipt[] memory rs = Receipts.chain(jobHash, 3, positions);
        if (breakAt < steps) {
            uint256 hop = bound(seed >> 64, 0, 2);
            if (hop == 0) rs[breakAt * 3].start += 1;
            else rs[breakAt * 3 + hop].input = keccak256("a forged input");
        }
        served = uint32(bound(served, 1, 64));
        bytes memory blob = rs.encode();
        _commitAs(nodes[1], blob, served);
        (uint32 walked,) = market.provenPositions(jobHash, 3, blob);
        assertEq(walked, proven, "proven up to the break");

        if (served <= proven) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.NoOvercharge.selector, proven, served));
            vm.prank(other);
            market.proveOvercharge(jobHash, blob);
            assertTrue(_status(jobHash) == IJobMarket.JobStatus.Submitted, "an honest charge stands");
            assertEq(registry.getNode(nodes[1]).stake, MIN_STAKE, "no slash");
        } else {
            vm.prank(other);
            market.proveOvercharge(jobHash, blob);
            uint256 bounty = (50e18 - 2 * uint256(served) * 10 * PRICE) * 2_000 / 10_000;
            assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "an over-charge is overturned");
            assertEq(registry.getNode(nodes[1]).stake, 50e18, "the submitter slashed");
            assertEq(token.balanceOf(other), 1_000e18 + bounty, "the prover paid");
            assertEq(market.escrowOf(client), 100e18, "client refunded");
        }
        _assertConserved(_actors());
    }
}
