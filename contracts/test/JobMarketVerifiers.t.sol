// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract JobMarketVerifiersTest is MarketFixture {
    bytes32 internal constant EVIDENCE = keccak256("transcript mismatch at hop 1");

    function setUp() public override {
        super.setUp();
        _stakeNodes();
        _deposit(client, 100e18);
    }

    function _vote(uint256 verifier, bytes32 jobHash, uint8 hop) internal {
        vm.prank(verifiers[verifier]);
        market.challenge(jobHash, hop, EVIDENCE);
    }

    // ------------------------------------------------------------ verifier stake

    function testVerifierStakeLifecycle() public {
        address v = verifiers[0];
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.VerifierStaked(v, 100e18, 100e18);
        vm.prank(v);
        market.stakeVerifier(100e18);
        vm.prank(v);
        market.stakeVerifier(1); // top-ups have no minimum
        assertTrue(market.isVerifier(v), "active");
        assertEq(market.verifierStake(v), 100e18 + 1, "stake");
        assertEq(market.totalVerifierStake(), 100e18 + 1, "total");

        uint64 at = uint64(block.timestamp + 3 days);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.VerifierUnstakeRequested(v, 100e18 + 1, at);
        vm.prank(v);
        market.requestVerifierUnstake();
        assertTrue(!market.isVerifier(v), "no longer verifying");
        assertEq(market.getVerifier(v).unbondingAt, at, "unbondingAt");

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.VerifierUnbonding.selector, v));
        vm.prank(v);
        market.stakeVerifier(1);

        vm.warp(at - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnbondingNotOver.selector, v, at - 1, at));
        vm.prank(v);
        market.withdrawVerifierStake();

        vm.warp(at);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.VerifierWithdrawn(v, 100e18 + 1);
        vm.prank(v);
        market.withdrawVerifierStake();
        assertEq(token.balanceOf(v), 1_000e18, "all back");
        assertEq(market.totalVerifierStake(), 0, "total");
    }

    function testVerifierStakeErrors() public {
        address v = verifiers[0];
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StakeBelowMinimum.selector, v, 100e18 - 1, 100e18));
        vm.prank(v);
        market.stakeVerifier(100e18 - 1);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotVerifier.selector, v));
        vm.prank(v);
        market.requestVerifierUnstake();

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotUnbonding.selector, v));
        vm.prank(v);
        market.withdrawVerifierStake();
    }

    // ---------------------------------------------------------------- challenges

    function testQuorumOverturnsTheJobSlashesTheHopAndPaysTheBounty() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), 10);
        uint256 cost = 10 * 30 * PRICE;

        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ChallengeVoted(jobHash, verifiers[0], 1, EVIDENCE, 1);
        _vote(0, jobHash, 1);
        assertEq(market.escrowOf(client), 100e18 - cost, "one vote changes nothing");

        vm.expectEmit(true, true, true, true, address(registry));
        emit INodeRegistry.NodeSlashed(nodes[1], 50e18, 50e18);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobChallenged(jobHash, nodes[1], 1, 50e18, 10e18);
        _vote(1, jobHash, 1);

        assertTrue(market.getJob(jobHash).status == IJobMarket.JobStatus.Challenged, "challenged");
        assertEq(market.escrowOf(client), 100e18, "client refunded");
        assertEq(market.totalLocked(), 0, "unlocked");
        assertEq(registry.getNode(nodes[1]).stake, 50e18, "hop slashed");
        assertTrue(!registry.isActive(nodes[1]), "slashed below minimum: deactivated");
        assertEq(token.balanceOf(verifiers[0]), 900e18 + 5e18, "bounty voter 0");
        assertEq(token.balanceOf(verifiers[1]), 900e18 + 5e18, "bounty voter 1");
        assertEq(market.rewardPool(), 40e18, "rest to the pool");
        _assertConserved(_actors());

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.finalize(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        _vote(2, jobHash, 1);
    }

    function testVotesOnDifferentHopsDoNotAddUp() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), 10);
        _vote(0, jobHash, 0);
        _vote(1, jobHash, 2);
        assertTrue(market.getJob(jobHash).status == IJobMarket.JobStatus.Submitted, "still pending");
    }

    function testChallengeErrors() public {
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), 10);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotVerifier.selector, other));
        vm.prank(other);
        market.challenge(jobHash, 0, EVIDENCE);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(0)));
        _vote(0, bytes32(0), 0);

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidHop.selector, uint8(3), uint256(3)));
        _vote(0, jobHash, 3);

        _vote(0, jobHash, 0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AlreadyVoted.selector, jobHash, verifiers[0]));
        _vote(0, jobHash, 1);

        uint256 endsAt = block.timestamp + 1 hours;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobHash, endsAt));
        _vote(1, jobHash, 0);
    }

    // ---------------------------------------------------------------------- fuzz

    function testFuzzVerifierStake(uint256 amount, uint256 topUp, uint256 wait) public {
        amount = bound(amount, 100e18, 600e18);
        topUp = bound(topUp, 0, 400e18);
        wait = bound(wait, 0, 6 days);
        address v = verifiers[0];
        vm.startPrank(v);
        market.stakeVerifier(amount);
        market.stakeVerifier(topUp);
        market.requestVerifierUnstake();
        vm.stopPrank();
        uint256 at = block.timestamp + 3 days;
        vm.warp(block.timestamp + wait);
        if (block.timestamp < at) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnbondingNotOver.selector, v, block.timestamp, at));
        }
        vm.prank(v);
        market.withdrawVerifierStake();
        uint256 back = block.timestamp < at ? 0 : amount + topUp;
        assertEq(token.balanceOf(v), 1_000e18 - amount - topUp + back, "wallet");
        _assertConserved(_actors());
    }

    function testFuzzChallengeConservesTokens(uint256 nodeStake, uint8 hop, uint32 served) public {
        nodeStake = bound(nodeStake, 0, 900e18);
        hop = uint8(bound(hop, 0, 2));
        served = uint32(bound(served, 1, 64));
        vm.prank(nodes[hop]);
        registry.stake(nodeStake, _config(uint16(10 * hop), uint16(10 * hop + 10), PRICE));
        _stakeVerifiers();
        bytes32 jobHash = _submit(_job(client, 1), served);
        uint256 stakeBefore = registry.getNode(nodes[hop]).stake;
        _vote(0, jobHash, hop);
        _vote(1, jobHash, hop);
        uint256 slashed = stakeBefore - registry.getNode(nodes[hop]).stake;
        assertEq(slashed, stakeBefore < 50e18 ? stakeBefore : 50e18, "slash capped by stake");
        assertEq(market.escrowOf(client), 100e18, "refunded");
        uint256 share = slashed * 2_000 / 10_000 / 2;
        assertEq(token.balanceOf(verifiers[0]), 900e18 + share, "bounty");
        assertEq(market.rewardPool(), slashed - 2 * share, "pool");
        _assertConserved(_actors());
    }
}
