// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobMarket} from "../JobMarket.sol";
import {NodeRegistry} from "../NodeRegistry.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// @notice The market's side of a dispute, with this test contract acting as the court:
/// freeze, release and overturn, and who may call them.
contract JobMarketCourtTest is MarketFixture {
    bytes32 internal constant COMMITMENT = keccak256("receipts");
    uint256 internal constant HOP_AMOUNT = 10 * 10 * PRICE;

    NodeRegistry internal reg;
    JobMarket internal mkt;

    function setUp() public override {
        super.setUp();
        (reg, mkt) = _market(_params());
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.CourtSet(address(this));
        mkt.setCourt(address(this));
    }

    function _market(IJobMarket.MarketParams memory p) internal returns (NodeRegistry r, JobMarket m) {
        r = new NodeRegistry(IERC20(address(token)), MIN_STAKE, UNBONDING, TERMS_LOCK);
        m = new JobMarket(IERC20(address(token)), r, p);
        r.setMarket(address(m));
        for (uint256 i = 0; i < 3; ++i) {
            vm.startPrank(nodes[i]);
            token.approve(address(r), type(uint256).max);
            r.stake(MIN_STAKE, _config(uint16(10 * i), uint16(10 * i + 10), PRICE));
            vm.stopPrank();
        }
        vm.startPrank(client);
        token.approve(address(m), type(uint256).max);
        m.deposit(100e18);
        vm.stopPrank();
    }

    function _submitTo(JobMarket m, uint256 nonce) internal returns (bytes32) {
        IJobMarket.Job memory job = _job(client, nonce);
        bytes memory sig = _sign(m, job, CLIENT_KEY);
        vm.prank(nodes[0]);
        m.submitResult(job, sig, 10, COMMITMENT);
        return m.hashJob(job);
    }

    function _everyone() internal view returns (address[] memory all) {
        address[] memory actors = _actors();
        all = new address[](actors.length + 1);
        for (uint256 i = 0; i < actors.length; ++i) {
            all[i] = actors[i];
        }
        all[actors.length] = address(this);
    }

    function _assertBooks() internal view {
        assertEq(
            token.balanceOf(address(mkt)), mkt.totalEscrow() + mkt.totalLocked() + mkt.rewardPool(), "market books"
        );
    }

    // ---------------------------------------------------------------- the court

    function testCourtIsSetOnceByTheDeployer() public {
        (, JobMarket fresh) = _market(_params());
        assertEq(fresh.court(), address(0), "no court yet");
        vm.expectRevert(IJobMarket.CourtAlreadySet.selector);
        vm.prank(other);
        fresh.setCourt(other);
        vm.expectRevert(IJobMarket.CourtAlreadySet.selector);
        fresh.setCourt(address(0));
        vm.expectEmit(true, true, true, true, address(fresh));
        emit IJobMarket.CourtSet(other);
        fresh.setCourt(other);
        assertEq(fresh.court(), other, "court");
        vm.expectRevert(IJobMarket.CourtAlreadySet.selector);
        fresh.setCourt(address(this));
        assertEq(mkt.court(), address(this), "this test is the court of its market");
    }

    function testOnlyTheCourtFreezesReleasesAndOverturns() public {
        bytes32 jobHash = _submitTo(mkt, 1);
        vm.startPrank(other);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotCourt.selector, other));
        mkt.freeze(jobHash, 0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotCourt.selector, other));
        mkt.release(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotCourt.selector, other));
        mkt.overturn(jobHash, 0);
        vm.stopPrank();

        // Before any court is set nobody is the court.
        (, JobMarket fresh) = _market(_params());
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotCourt.selector, address(this)));
        fresh.freeze(jobHash, 0);
    }

    // ------------------------------------------------------------------- freeze

    function testFreezeReturnsTheHopsAndBlocksSettlement() public {
        bytes32 jobHash = _submitTo(mkt, 1);
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.JobDisputed(jobHash, 2);
        address[] memory hops = mkt.freeze(jobHash, 2);
        assertEq(hops.length, 3, "three hops");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(hops[i], nodes[i], "hop");
            assertEq(mkt.hopsOf(jobHash)[i], nodes[i], "hopsOf");
        }
        assertTrue(mkt.getJob(jobHash).status == IJobMarket.JobStatus.Disputed, "disputed");
        assertEq(mkt.totalLocked(), 3 * HOP_AMOUNT, "the cost stays locked");

        vm.warp(block.timestamp + 1 hours);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobUnderDispute.selector, jobHash));
        mkt.finalize(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.freeze(jobHash, 0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.proveOvercharge(jobHash, "");
    }

    function testFreezeErrors() public {
        bytes32 unknown = bytes32(uint256(7));
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, unknown));
        mkt.freeze(unknown, 0);

        bytes32 jobHash = _submitTo(mkt, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidHop.selector, uint8(3), uint256(3)));
        mkt.freeze(jobHash, 3);

        uint256 endsAt = block.timestamp + 1 hours;
        vm.warp(endsAt);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ChallengeWindowClosed.selector, jobHash, endsAt));
        mkt.freeze(jobHash, 0);

        mkt.finalize(jobHash);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.freeze(jobHash, 0);
        assertEq(mkt.hopsOf(unknown).length, 0, "an unknown job has no hops");
    }

    // ------------------------------------------------------------------ release

    function testReleaseMakesTheJobPayableAgain() public {
        bytes32 jobHash = _submitTo(mkt, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.release(jobHash); // not disputed
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(0)));
        mkt.release(bytes32(0));

        mkt.freeze(jobHash, 1);
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.JobReleased(jobHash);
        mkt.release(jobHash);
        assertTrue(mkt.getJob(jobHash).status == IJobMarket.JobStatus.Submitted, "pending again");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.release(jobHash);

        vm.warp(block.timestamp + 1 hours);
        mkt.finalize(jobHash);
        assertEq(token.balanceOf(nodes[2]), 900e18 + HOP_AMOUNT, "paid");
        _assertBooks();
    }

    // ----------------------------------------------------------------- overturn

    function testOverturnRefundsSlashesCompensatesAndPaysTheCourt() public {
        bytes32 jobHash = _submitTo(mkt, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.overturn(jobHash, 1); // not disputed
        mkt.freeze(jobHash, 1);

        uint256 bounty = (50e18 - 2 * HOP_AMOUNT) * 2_000 / 10_000;
        vm.expectEmit(true, true, true, true, address(reg));
        emit INodeRegistry.NodeSlashed(nodes[1], 50e18, 50e18);
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.JobChallenged(jobHash, nodes[1], 1, 50e18, bounty);
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.HopCompensated(jobHash, nodes[0], HOP_AMOUNT);
        vm.expectEmit(true, true, true, true, address(mkt));
        emit IJobMarket.HopCompensated(jobHash, nodes[2], HOP_AMOUNT);
        uint256 got = mkt.overturn(jobHash, 1);

        assertEq(got, bounty, "returns the bounty");
        assertEq(token.balanceOf(address(this)), bounty, "sent to the court");
        assertEq(mkt.escrowOf(client), 100e18, "client refunded");
        assertEq(mkt.totalLocked(), 0, "unlocked");
        assertEq(mkt.rewardPool(), 50e18 - 2 * HOP_AMOUNT - bounty, "the rest to the pool");
        assertTrue(mkt.getJob(jobHash).status == IJobMarket.JobStatus.Challenged, "challenged");
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, jobHash));
        mkt.overturn(jobHash, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(0)));
        mkt.overturn(bytes32(0), 1);
        _assertBooks();
    }

    function testCompensationGoesAsFarAsTheSlash() public {
        IJobMarket.MarketParams memory p = _params();
        p.slashAmount = HOP_AMOUNT + HOP_AMOUNT / 2;
        (NodeRegistry r, JobMarket m) = _market(p);
        m.setCourt(address(this));
        bytes32 jobHash = _submitTo(m, 1);
        m.freeze(jobHash, 1);
        uint256 wallet0 = token.balanceOf(nodes[0]);
        uint256 wallet2 = token.balanceOf(nodes[2]);
        vm.expectEmit(true, true, true, true, address(m));
        emit IJobMarket.JobChallenged(jobHash, nodes[1], 1, p.slashAmount, 0);
        vm.expectEmit(true, true, true, true, address(m));
        emit IJobMarket.HopCompensated(jobHash, nodes[0], HOP_AMOUNT);
        vm.expectEmit(true, true, true, true, address(m));
        emit IJobMarket.HopCompensated(jobHash, nodes[2], HOP_AMOUNT / 2);
        assertEq(m.overturn(jobHash, 1), 0, "nothing left for a bounty");
        assertEq(m.rewardPool(), 0, "nor for the pool");
        assertEq(r.getNode(nodes[1]).stake, MIN_STAKE - p.slashAmount, "slashed");
        assertEq(token.balanceOf(nodes[0]), wallet0 + HOP_AMOUNT, "hop 0 in full");
        assertEq(token.balanceOf(nodes[2]), wallet2 + HOP_AMOUNT / 2, "hop 2 with what was left");
    }

    function testOverturnAtTheFirstHopOfATwoHopRoutePaysOnlyTheSecond() public {
        IJobMarket.Job memory job = _job(client, 1);
        job.route = new address[](2);
        job.spanStarts = new uint16[](2);
        job.spanEnds = new uint16[](2);
        (job.route[0], job.route[1]) = (nodes[0], nodes[1]);
        (job.spanStarts[0], job.spanEnds[0], job.spanStarts[1], job.spanEnds[1]) = (0, 10, 10, 20);
        bytes memory sig = _sign(mkt, job, CLIENT_KEY);
        vm.prank(nodes[1]);
        mkt.submitResult(job, sig, 10, COMMITMENT);
        bytes32 jobHash = mkt.hashJob(job);
        mkt.freeze(jobHash, 0);
        mkt.overturn(jobHash, 0);
        assertEq(token.balanceOf(nodes[0]), 900e18, "the faulty hop is not compensated");
        assertEq(token.balanceOf(nodes[1]), 900e18 + HOP_AMOUNT, "the honest one is");
        _assertBooks();
        uint256 sum = token.balanceOf(address(reg)) + token.balanceOf(address(mkt)) + token.balanceOf(address(market))
            + token.balanceOf(address(registry)) + token.balanceOf(address(court));
        address[] memory all = _everyone();
        for (uint256 i = 0; i < all.length; ++i) {
            sum += token.balanceOf(all[i]);
        }
        assertEq(sum, token.totalSupply(), "tokens conserved");
    }
}
