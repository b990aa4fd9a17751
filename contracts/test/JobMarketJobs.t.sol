// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

contract JobMarketJobsTest is MarketFixture {
    bytes32 internal constant COMMITMENT = keccak256("receipts");

    function setUp() public override {
        super.setUp();
        _stakeNodes();
        _deposit(client, 100e18);
    }

    function _expectSubmitRevert(IJobMarket.Job memory job, uint32 served, bytes memory err) internal {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(err);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, served, COMMITMENT);
    }

    // ------------------------------------------------------------------- submit

    function testSubmitLocksTheCostAndRecordsEachHop() public {
        IJobMarket.Job memory job = _job(client, 1);
        bytes32 jobHash = market.hashJob(job);
        uint256 cost = 5 * 30 * PRICE;
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.ResultSubmitted(jobHash, client, nodes[1], 5, COMMITMENT, cost);
        vm.prank(nodes[1]);
        market.submitResult(job, sig, 5, COMMITMENT);

        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertTrue(rec.status == IJobMarket.JobStatus.Submitted, "submitted");
        assertEq(rec.submitter, nodes[1], "submitter");
        assertEq(rec.cost, cost, "cost");
        assertEq(rec.amounts[2], 5 * 10 * PRICE, "hop amount");
        assertEq(rec.layers[0], 10, "layers");
        assertEq(market.escrowOf(client), 100e18 - cost, "escrow");
        assertEq(market.totalLocked(), cost, "locked");
    }

    function testMalformedRoutesRevert() public {
        IJobMarket.Job memory job = _job(client, 1);
        job.route = new address[](0);
        job.spanStarts = new uint16[](0);
        job.spanEnds = new uint16[](0);
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));

        job = _job(client, 1);
        job.spanEnds = new uint16[](2);
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));

        job = _job(client, 1);
        job.spanStarts[1] = 11; // gap between hops
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));

        job = _job(client, 1);
        job.spanStarts[0] = 1; // does not start at layer 0
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));

        job = _job(client, 1);
        job.spanEnds[2] = 20; // empty last span
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));

        // 256 hops: more than a uint8 hop index can name in a dispute.
        job = _job(client, 1);
        job.route = new address[](256);
        job.spanStarts = new uint16[](256);
        job.spanEnds = new uint16[](256);
        for (uint256 i = 0; i < 256; ++i) {
            job.route[i] = nodes[0];
            job.spanStarts[i] = uint16(i);
            job.spanEnds[i] = uint16(i + 1);
        }
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.InvalidRoute.selector));
    }

    function testOnlyRouteNodesSubmit() public {
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotRouteNode.selector, other));
        vm.prank(other);
        market.submitResult(job, sig, 1, COMMITMENT);
    }

    function testSignatureMustBeTheClients() public {
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, OTHER_KEY);
        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 1, COMMITMENT);

        vm.expectRevert(IJobMarket.InvalidSignature.selector);
        vm.prank(nodes[0]);
        market.submitResult(job, hex"1234", 1, COMMITMENT);
    }

    function testExpiredJobReverts() public {
        IJobMarket.Job memory job = _job(client, 1);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.warp(job.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobExpired.selector, job.deadline, job.deadline + 1));
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 1, COMMITMENT);
    }

    function testTokenCountIsBounded() public {
        IJobMarket.Job memory job = _job(client, 1);
        _expectSubmitRevert(job, 0, abi.encodeWithSelector(IJobMarket.NoTokensServed.selector));
        _expectSubmitRevert(job, 65, abi.encodeWithSelector(IJobMarket.TooManyTokens.selector, uint32(65), uint32(64)));
    }

    function testHopsMustMatchTheirRegistration() public {
        IJobMarket.Job memory job = _job(client, 1);
        job.modelId = keccak256("another model");
        _expectSubmitRevert(
            job, 1, abi.encodeWithSelector(IJobMarket.ModelMismatch.selector, nodes[0], job.modelId, MODEL)
        );

        job = _job(client, 1);
        job.spanEnds[0] = 9; // a part of nodes[0]'s 0:10 is fine, but nodes[1] serves 10:20
        job.spanStarts[1] = 9;
        _expectSubmitRevert(
            job, 1, abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, nodes[1], uint16(9), uint16(20))
        );

        job = _job(client, 1);
        job.maxPricePerToken = PRICE - 1;
        _expectSubmitRevert(
            job, 1, abi.encodeWithSelector(IJobMarket.PriceAboveCap.selector, nodes[0], PRICE, PRICE - 1)
        );

        vm.prank(nodes[2]);
        registry.requestUnstake();
        vm.warp(block.timestamp + 1);
        job = _job(client, 1); // sent after nodes[2] asked to leave (RegistrationChanges.t.sol)
        job.deadline = uint64(block.timestamp + TERMS_LOCK);
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.NodeNotActive.selector, nodes[2]));
    }

    function testEscrowMustCoverTheCost() public {
        IJobMarket.Job memory job = _job(other, 1);
        bytes memory sig = _sign(market, job, OTHER_KEY);
        _deposit(other, 30 * PRICE - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.InsufficientEscrow.selector, other, 30 * PRICE - 1, 30 * PRICE)
        );
        vm.prank(nodes[0]);
        market.submitResult(job, sig, 1, COMMITMENT);
    }

    function testSameJobCannotBeSubmittedTwice() public {
        IJobMarket.Job memory job = _job(client, 1);
        bytes32 jobHash = _submit(job, 1);
        _expectSubmitRevert(job, 1, abi.encodeWithSelector(IJobMarket.JobAlreadySubmitted.selector, jobHash));
    }

    // ----------------------------------------------------------------- finalize

    function testFinalizePaysEachHopAndItsRewardAfterTheWindow() public {
        vm.prank(other);
        market.fundRewards(1e18);
        bytes32 jobHash = _submit(_job(client, 1), 4);
        uint256 endsAt = block.timestamp + 1 hours;
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowOpen.selector, jobHash, endsAt));
        market.finalize(jobHash);

        vm.warp(endsAt);
        uint256 hopAmount = 4 * 10 * PRICE;
        uint256 reward = 4 * 1e15;
        uint256[3] memory before;
        for (uint256 i = 0; i < 3; ++i) {
            before[i] = token.balanceOf(nodes[i]);
        }
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobFinalized(jobHash, 3 * hopAmount, reward - 1); // a third of 4e15 leaves 1 wei of dust
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit(true, true, true, true, address(market));
            emit IJobMarket.HopPaid(jobHash, nodes[i], hopAmount, reward / 3);
        }
        vm.prank(other);
        market.finalize(jobHash);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(token.balanceOf(nodes[i]) - before[i], hopAmount + reward / 3, "hop paid");
        }
        assertEq(market.rewardPool(), 1e18 - reward + 1, "dust stays in the pool");
        assertEq(market.totalLocked(), 0, "nothing locked");
        assertTrue(market.getJob(jobHash).status == IJobMarket.JobStatus.Finalized, "finalized");

        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        market.finalize(jobHash);
    }

    function testRewardIsCappedByThePool() public {
        vm.prank(other);
        market.fundRewards(3);
        bytes32 jobHash = _submit(_job(client, 1), 4);
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.JobFinalized(jobHash, 3 * 4 * 10 * PRICE, 3);
        market.finalize(jobHash);
        assertEq(market.rewardPool(), 0, "pool emptied");
    }

    function testFinalizeUnknownJobReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(uint256(1))));
        market.finalize(bytes32(uint256(1)));
    }

    function testFundRewardsEmits() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit IJobMarket.RewardsFunded(other, 5e18, 5e18);
        vm.prank(other);
        market.fundRewards(5e18);
        assertEq(market.rewardPool(), 5e18, "pool");
    }

    // ---------------------------------------------------------------------- fuzz

    function testFuzzSubmitAndFinalizeMoveExactlyTheCost(uint32 served, uint256 price, uint256 pool) public {
        served = uint32(bound(served, 1, 64));
        price = bound(price, 0, 1e15);
        pool = bound(pool, 0, 1e18);
        vm.prank(nodes[1]);
        registry.updateConfig(_config(10, 20, price));
        vm.prank(other);
        market.fundRewards(pool);
        uint256 escrowBefore = market.escrowOf(client);
        IJobMarket.Job memory job = _job(client, 1);
        job.maxPricePerToken = 1e15;
        bytes32 jobHash = _submit(job, served);
        uint256 cost = uint256(served) * 10 * (2 * PRICE + price);
        assertEq(escrowBefore - market.escrowOf(client), cost, "escrow charged the cost");
        assertEq(market.totalLocked(), cost, "locked");

        vm.warp(block.timestamp + 1 hours);
        uint256 nodeBefore = token.balanceOf(nodes[1]);
        market.finalize(jobHash);
        uint256 reward = uint256(served) * 1e15;
        if (reward > pool) reward = pool;
        assertEq(token.balanceOf(nodes[1]) - nodeBefore, uint256(served) * 10 * price + reward / 3, "hop 1 paid");
        assertLe(pool - market.rewardPool(), reward, "reward within the pool");
        assertEq(market.totalLocked(), 0, "unlocked");
        _assertConserved(_actors());
    }

    function testFuzzFundRewards(uint256 amount) public {
        amount = bound(amount, 0, 1_000e18);
        vm.prank(other);
        market.fundRewards(amount);
        assertEq(market.rewardPool(), amount, "pool");
        assertEq(token.balanceOf(other), 1_000e18 - amount, "wallet");
        _assertConserved(_actors());
    }
}
