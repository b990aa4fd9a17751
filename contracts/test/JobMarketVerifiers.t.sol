// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IDisputeCourt} from "../interfaces/IDisputeCourt.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {DisputeFixture} from "./utils/DisputeFixture.sol";

/// @notice Verifier stakes (held by the court) and the dispute path that replaced the
/// market's quorum challenge.
contract JobMarketVerifiersTest is DisputeFixture {
    function setUp() public override {
        MarketFixture.setUp();
        _stakeNodes();
        _deposit(client, 100e18);
    }

    // ------------------------------------------------------------ verifier stake

    function testVerifierStakeLifecycle() public {
        address v = verifiers[0];
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VerifierStaked(v, 100e18, 100e18);
        vm.prank(v);
        court.stakeVerifier(100e18);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VerifierStaked(v, 1, 100e18 + 1);
        vm.prank(v);
        court.stakeVerifier(1); // top-ups have no minimum
        assertTrue(court.isVerifier(v), "active");
        assertEq(court.verifierStake(v), 100e18 + 1, "stake");
        assertEq(court.totalVerifierStake(), 100e18 + 1, "total");
        assertEq(court.verifiers().length, 1, "listed once");
        assertEq(court.verifiers()[0], v, "listed");
        assertEq(token.balanceOf(address(court)), 100e18 + 1, "tokens pulled by the court");
        assertEq(token.balanceOf(address(market)), market.totalEscrow(), "the market holds no verifier stake");

        uint64 at = uint64(block.timestamp + 3 days);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VerifierUnstakeRequested(v, 100e18 + 1, at);
        vm.prank(v);
        court.requestVerifierUnstake();
        assertTrue(!court.isVerifier(v), "no longer verifying");
        assertEq(court.getVerifier(v).unbondingAt, at, "unbondingAt");

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.VerifierUnbonding.selector, v));
        vm.prank(v);
        court.stakeVerifier(1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotVerifier.selector, v));
        vm.prank(v);
        court.requestVerifierUnstake();

        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.UnbondingNotOver.selector, v, at - 1, at));
        vm.prank(v);
        court.withdrawVerifierStake();

        vm.warp(at);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.VerifierWithdrawn(v, 100e18 + 1);
        vm.prank(v);
        court.withdrawVerifierStake();
        assertEq(token.balanceOf(v), 1_000e18, "all back");
        assertEq(court.totalVerifierStake(), 0, "total");
        assertEq(court.verifiers().length, 0, "delisted");
        assertEq(court.getVerifier(v).unbondingAt, 0, "record deleted");

        vm.prank(v);
        court.stakeVerifier(100e18); // a withdrawn verifier may come back
        assertTrue(court.isVerifier(v), "back");
    }

    function testVerifierStakeErrors() public {
        address v = verifiers[0];
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.StakeBelowMinimum.selector, v, 100e18 - 1, 100e18));
        vm.prank(v);
        court.stakeVerifier(100e18 - 1);

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotVerifier.selector, v));
        vm.prank(v);
        court.requestVerifierUnstake();

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotUnbonding.selector, v));
        vm.prank(v);
        court.withdrawVerifierStake();
    }

    function testRemovingAVerifierKeepsTheOthersListed() public {
        _stakeVerifiers();
        vm.prank(verifiers[1]);
        court.requestVerifierUnstake();
        vm.warp(block.timestamp + 3 days);
        vm.prank(verifiers[1]);
        court.withdrawVerifierStake();
        address[] memory list = court.verifiers();
        assertEq(list.length, 4, "four left");
        assertEq(list[1], verifiers[4], "last moved into the gap");
        for (uint256 i = 0; i < 5; ++i) {
            assertTrue(_isIn(list, verifiers[i]) == (i != 1), "the others stay listed");
        }
        assertEq(court.totalVerifierStake(), 400e18, "total");
    }

    function testJurorStakeIsLockedUntilTheDisputeEnds() public {
        _stakeVerifiers();
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        address juror = jurors[0];
        assertEq(court.getVerifier(juror).locked, PENALTY, "a penalty's worth locked");

        vm.prank(juror);
        court.requestVerifierUnstake();
        _vote(jobHash, _unanimous(3, false)); // still seated while unbonding: it votes
        vm.warp(block.timestamp + 3 days);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.StakeLocked.selector, juror, PENALTY));
        vm.prank(juror);
        court.withdrawVerifierStake();

        court.resolve(jobHash);
        assertEq(court.getVerifier(juror).locked, 0, "unlocked once the dispute is over");
        vm.prank(juror);
        court.withdrawVerifierStake();
        assertEq(court.verifierStake(juror), 0, "withdrawn");
    }

    function testJurorPenalisedBelowTheMinimumCanStillLeave() public {
        _stakeVerifiers();
        bytes32 jobHash = _disputedJob(1, FAULT);
        address[] memory jurors = _draw(jobHash);
        _vote(jobHash, _votes(false, false, true)); // jurors[2] votes against the majority
        court.resolve(jobHash);
        address juror = jurors[2];
        assertEq(court.verifierStake(juror), 90e18, "penalised");
        assertTrue(!court.isVerifier(juror), "below the minimum: not a verifier");

        vm.prank(juror);
        court.requestVerifierUnstake();
        vm.warp(block.timestamp + 3 days);
        vm.prank(juror);
        court.withdrawVerifierStake();
        assertEq(token.balanceOf(juror), 990e18, "the rest of its stake back");
        _assertConserved(_actors());
    }

    // ----------------------------------------------------------------- disputes

    function testUpheldDisputeOverturnsTheJobSlashesTheHopAndPaysTheBounty() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        uint256 cost = 10 * 30 * PRICE;
        uint256 hopAmount = 10 * 10 * PRICE;

        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobDisputed(jobHash, 1);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeOpened(
            jobHash, verifiers[0], nodes[1], 1, FAULT, BOND, EVIDENCE, uint64(block.number + 1)
        );
        _open(jobHash, 1, FAULT, verifiers[0], BOND);
        assertEq(market.escrowOf(client), 100e18 - cost, "opening a dispute changes no payment");
        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Disputed, "frozen");

        address[] memory jurors = _draw(jobHash);
        _vote(jobHash, _unanimous(3, true));

        uint256 bounty = _courtBounty(50e18, 2 * hopAmount);
        uint256 toJurors = bounty * 5_000 / 10_000;
        vm.expectEmit(true, true, true, true, address(registry));
        emit INodeRegistry.NodeSlashed(nodes[1], 50e18, 50e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobChallenged(jobHash, nodes[1], 1, 50e18, bounty);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.HopCompensated(jobHash, nodes[0], hopAmount);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.HopCompensated(jobHash, nodes[2], hopAmount);
        vm.expectEmit(true, true, true, true, address(court));
        emit IDisputeCourt.DisputeResolved(jobHash, true, 3, 0, BOND + bounty - toJurors, 0);
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(court));
            emit IDisputeCourt.JurorPaid(jobHash, jurors[i], toJurors / 3);
        }
        court.resolve(jobHash);

        assertTrue(_status(jobHash) == IJobMarket.JobStatus.Challenged, "challenged");
        assertTrue(_phase(jobHash) == IDisputeCourt.Phase.Upheld, "upheld");
        assertEq(market.escrowOf(client), 100e18, "client refunded");
        assertEq(market.totalLocked(), 0, "unlocked");
        assertEq(registry.getNode(nodes[1]).stake, 50e18, "hop slashed");
        assertTrue(!registry.isActive(nodes[1]), "slashed below minimum: deactivated");
        assertEq(token.balanceOf(nodes[0]), 900e18 + hopAmount, "honest hop 0 paid for its work");
        assertEq(token.balanceOf(nodes[2]), 900e18 + hopAmount, "honest hop 2 paid for its work");
        assertEq(token.balanceOf(verifiers[0]), 900e18 + bounty - toJurors, "challenger: bond back and the rest");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(token.balanceOf(jurors[i]), 900e18 + toJurors / 3, "juror's share");
        }
        assertEq(market.rewardPool(), 50e18 - 2 * hopAmount - bounty, "rest to the pool");
        assertEq(court.totalHeld(), 0, "the court holds nothing for the dispute");
        _assertConserved(_actors());

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.finalize(jobHash);
    }

    function testJobIsDisputedOnce() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), SERVED);
        _open(jobHash, 0, FAULT, verifiers[0], BOND);
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.AlreadyDisputed.selector, jobHash));
        _open(jobHash, 2, FAULT, verifiers[1], BOND);
        assertEq(court.getDispute(jobHash).hop, 0, "the first dispute stands");
        assertEq(court.totalHeld(), BOND, "one bond held");
    }

    function testOpenDisputeErrors() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), SERVED);

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotVerifier.selector, other));
        _open(jobHash, 0, FAULT, other, BOND);

        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.BondBelowMinimum.selector, BOND - 1, BOND));
        _open(jobHash, 0, FAULT, verifiers[0], BOND - 1);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(0)));
        _open(bytes32(0), 0, FAULT, verifiers[0], BOND);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidHop.selector, uint8(3), uint256(3)));
        _open(jobHash, 3, FAULT, verifiers[0], BOND);

        vm.prank(verifiers[4]);
        court.requestVerifierUnstake();
        vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.NotVerifier.selector, verifiers[4]));
        _open(jobHash, 0, FAULT, verifiers[4], BOND);

        uint256 endsAt = block.timestamp + 1 hours;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobHash, endsAt));
        _open(jobHash, 0, FAULT, verifiers[0], BOND);

        market.finalize(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        _open(jobHash, 0, FAULT, verifiers[0], BOND);
        assertEq(court.totalHeld(), 0, "no bond taken by a failed open");
        assertEq(token.balanceOf(verifiers[0]), 900e18, "challenger's wallet untouched");
    }

    // ---------------------------------------------------------------------- fuzz

    function testFuzzVerifierStake(uint256 amount, uint256 topUp, uint256 wait) public {
        amount = bound(amount, 100e18, 600e18);
        topUp = bound(topUp, 0, 400e18);
        wait = bound(wait, 0, 6 days);
        address v = verifiers[0];
        vm.startPrank(v);
        court.stakeVerifier(amount);
        court.stakeVerifier(topUp);
        court.requestVerifierUnstake();
        vm.stopPrank();
        uint256 at = block.timestamp + 3 days;
        vm.warp(block.timestamp + wait);
        if (block.timestamp < at) {
            vm.expectRevert(abi.encodeWithSelector(IDisputeCourt.UnbondingNotOver.selector, v, block.timestamp, at));
        }
        vm.prank(v);
        court.withdrawVerifierStake();
        uint256 back = block.timestamp < at ? 0 : amount + topUp;
        assertEq(token.balanceOf(v), 1_000e18 - amount - topUp + back, "wallet");
        _assertConserved(_actors());
    }

    /// An upheld dispute slashes `min(slashAmount, stake)` however much the hop has left
    /// after earlier proven over-charges, and every token lands somewhere.
    function testFuzzUpheldDisputeConservesTokens(uint256 topUp, uint8 hop, uint32 served, uint8 priorSlashes)
        public
    {
        topUp = bound(topUp, 0, 100e18);
        hop = uint8(bound(hop, 0, 2));
        served = uint32(bound(served, 1, 64));
        priorSlashes = uint8(bound(priorSlashes, 0, 3));
        vm.prank(nodes[hop]);
        registry.stake(topUp, _config(uint16(10 * hop), uint16(10 * hop + 10), PRICE));
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), served);

        // Jobs that nodes[hop] submits with a commitment to no receipts at all: each one is an
        // over-charge anyone can prove, slashing the hop before the dispute's verdict.
        bytes32 noReceipts = sha256("sharedllm/commitment/v1");
        bytes32[] memory cheats = new bytes32[](priorSlashes);
        for (uint256 i = 0; i < priorSlashes; ++i) {
            IJobMarket.Job memory job = _job(client, 100 + i);
            bytes memory sig = _sign(market, job, CLIENT_KEY);
            vm.prank(nodes[hop]);
            market.submitResult(job, sig, 1, noReceipts);
            cheats[i] = market.hashJob(job);
        }
        for (uint256 i = 0; i < priorSlashes; ++i) {
            vm.prank(other);
            market.proveOvercharge(cheats[i], "");
        }

        uint256 stakeBefore = registry.getNode(nodes[hop]).stake;
        _open(jobHash, hop, FAULT, verifiers[0], BOND);
        _judge(jobHash, _unanimous(3, true));
        uint256 slashed = stakeBefore - registry.getNode(nodes[hop]).stake;
        assertEq(slashed, stakeBefore < 50e18 ? stakeBefore : 50e18, "slash capped by stake");
        assertEq(market.escrowOf(client), 100e18, "refunded");
        uint256 othersPay = 2 * uint256(served) * 10 * PRICE;
        if (othersPay > slashed) othersPay = slashed;
        uint256 bounty = _courtBounty(slashed, othersPay);
        assertEq(token.balanceOf(verifiers[0]), 900e18 + bounty - bounty / 2, "challenger: bond and the rest");
        _assertConserved(_actors());
    }
}
