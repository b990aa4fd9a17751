// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../interfaces/IBatchSettlement.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {vm} from "./utils/Vm.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

/// @notice A node's registration changing under jobs it was already sent. Settlement reads
/// each hop's registration when the job is submitted (or its batch posted), so a hop that
/// asked to leave, or changed its price, span or model, after a job was signed would void
/// the whole job, every other hop's pay with it: an attack any one hop could make on the
/// rest of a route (or on a whole batch), and an accident for an honest node that moves or
/// reprices. A job that may have been sent before the change (its deadline is at most the
/// change plus the longest job) is checked and priced against the terms the node had then,
/// and a node that asked to leave is paid for such jobs; terms change at most once per lock.
contract RegistrationChangesTest is BatchFixture {
    uint32 internal constant TOKENS = 8;

    function _submitAs(address node, IJobMarket.Job memory job) internal returns (bytes32 jobHash) {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(node);
        market.submitResult(job, sig, TOKENS, COMMITMENT);
        return market.hashJob(job);
    }

    function _expectRefused(IJobMarket.Job memory job, bytes memory err) internal {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(err);
        vm.prank(nodes[2]);
        market.submitResult(job, sig, TOKENS, COMMITMENT);
    }

    function _reconfigure(address node, uint16 start, uint16 end, uint256 price) internal {
        vm.prank(node);
        registry.updateConfig(_config(start, end, price));
    }

    /// @dev Attack (before the fix: NodeNotActive for the whole job): hop 0 asks to leave
    /// after the job was sent, before the last hop submits it.
    function testAHopThatAsksToLeaveAfterTheJobCannotVoidIt() public {
        IJobMarket.Job memory job = _job(client, 1);
        vm.warp(block.timestamp + 10 minutes); // the answer is served meanwhile
        vm.prank(nodes[0]);
        registry.requestUnstake();
        bytes32 jobHash = _submitAs(nodes[2], job);
        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertEq(rec.amounts.length, 3, "every hop recorded");
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(rec.amounts[i], uint256(TOKENS) * 10 * PRICE, "each hop paid in full");
        }
        // The leaver stays slashable past the job's challenge window.
        assertTrue(registry.getNode(nodes[0]).unbondingAt > block.timestamp + 1 hours, "slashable");
    }

    function testALeaverIsNotPaidForAJobSentAfterItAsked() public {
        vm.prank(nodes[0]);
        registry.requestUnstake();
        vm.warp(block.timestamp + 1);
        IJobMarket.Job memory job = _job(client, 1);
        job.deadline = uint64(block.timestamp + TERMS_LOCK); // can only have been sent after
        _expectRefused(job, abi.encodeWithSelector(IJobMarket.NodeNotActive.selector, nodes[0]));
    }

    /// @dev Attack (before the fix: PriceAboveCap for the whole job): hop 1 raises its price
    /// above the job's cap after the job was sent. It is paid its old price.
    function testARepriceAfterTheJobPaysTheOldPriceInsteadOfVoidingIt() public {
        IJobMarket.Job memory job = _job(client, 1);
        vm.warp(block.timestamp + 5 minutes);
        _reconfigure(nodes[1], 10, 20, 100 * PRICE);
        bytes32 jobHash = _submitAs(nodes[2], job);
        assertEq(market.getJob(jobHash).amounts[1], uint256(TOKENS) * 10 * PRICE, "the old price");

        // A job sent after the change, with a cap that covers it, pays the new price.
        vm.warp(block.timestamp + TERMS_LOCK);
        IJobMarket.Job memory later = _job(client, 2);
        later.maxPricePerToken = 100 * PRICE;
        jobHash = _submitAs(nodes[2], later);
        assertEq(market.getJob(jobHash).amounts[1], uint256(TOKENS) * 10 * 100 * PRICE, "the new");
    }

    /// @dev Attack (before the fix: SpanMismatch): hop 2 moves its span after the job.
    function testAMoveAfterTheJobKeepsItPayable() public {
        IJobMarket.Job memory job = _job(client, 1);
        _reconfigure(nodes[2], 0, 10, PRICE);
        bytes32 jobHash = _submitAs(nodes[2], job);
        assertEq(market.getJob(jobHash).layers[2], 10, "paid for 20:30 as registered then");
    }

    function testAJobThatCanOnlyBeNewerThanTheChangeIsCheckedAgainstTheNewTerms() public {
        _reconfigure(nodes[1], 10, 20, 100 * PRICE);
        vm.warp(block.timestamp + 1);
        IJobMarket.Job memory job = _job(client, 1);
        job.deadline = uint64(block.timestamp + 1 days); // past the change plus the longest job
        _expectRefused(
            job, abi.encodeWithSelector(IJobMarket.PriceAboveCap.selector, nodes[1], 100 * PRICE, PRICE)
        );
    }

    /// @dev Attack: two quick changes would leave jobs sent under the middle terms matching
    /// neither the current nor the kept ones. One change per lock; the endpoint, key and
    /// hardware change freely.
    function testTermsChangeAtMostOncePerLock() public {
        _reconfigure(nodes[1], 10, 20, 2 * PRICE);
        (INodeRegistry.Terms memory prior, uint64 changedAt) = registry.priorTerms(nodes[1]);
        assertEq(prior.pricePerToken, PRICE, "the kept price");
        assertEq(changedAt, block.timestamp, "when");
        vm.warp(block.timestamp + TERMS_LOCK - 1);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.TermsChangeTooSoon.selector, nodes[1], changedAt + TERMS_LOCK)
        );
        _reconfigure(nodes[1], 10, 20, 3 * PRICE);
        INodeRegistry.NodeConfig memory cfg = _config(10, 20, 2 * PRICE);
        cfg.endpoint = "https://node.example:7001";
        vm.prank(nodes[1]);
        registry.updateConfig(cfg); // terms unchanged: allowed
        vm.warp(block.timestamp + 1);
        _reconfigure(nodes[1], 10, 20, 3 * PRICE);
        (prior,) = registry.priorTerms(nodes[1]);
        assertEq(prior.pricePerToken, 2 * PRICE, "the kept price is the last one");
    }

    /// @dev Attack (before the fix: NodeNotActive for the whole batch): a node credited by
    /// one entry asks to leave before the batch is posted.
    function testABatchStillPostsWhenACreditedNodeAsksToLeave() public {
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(client, _clientJobs(client, CLIENT_KEY, 1, 3, TOKENS)));
        vm.prank(nodes[0]);
        registry.requestUnstake();
        vm.prank(nodes[2]);
        registry.requestUnstake(); // the poster itself may still post what it served
        assertEq(registry.payableUntil(nodes[0]), block.timestamp + TERMS_LOCK, "payable until");
        uint256 id = _post(entries);
        vm.warp(block.timestamp + 2 hours);
        batches.finalizeBatch(id, _payout(entries));

        vm.warp(block.timestamp + TERMS_LOCK); // any job sent before it asked has expired
        entries = _one(_entryOf(client, _clientJobs(client, CLIENT_KEY, 10, 1, TOKENS)));
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.NodeNotActive.selector, nodes[2]));
        _post(entries);
    }

    function testPayableUntil() public {
        assertEq(registry.payableUntil(nodes[0]), type(uint64).max, "active");
        assertEq(registry.payableUntil(address(0xBEEF)), 0, "never staked");
    }

    /// @dev Any reprice at any time after the job: the job settles, at the old price while it
    /// may have been sent before the change, and never for more than its cap.
    function testFuzzARepriceNeverVoidsAJobSentBeforeIt(uint256 newPrice, uint256 after_) public {
        newPrice = bound(newPrice, 0, 1_000 * PRICE);
        after_ = bound(after_, 0, 1 hours); // the job's deadline is an hour out
        IJobMarket.Job memory job = _job(client, 1);
        vm.warp(block.timestamp + after_);
        _reconfigure(nodes[1], 10, 20, newPrice);
        bytes32 jobHash = _submitAs(nodes[2], job);
        uint256 paid = market.getJob(jobHash).amounts[1];
        uint256 want = newPrice <= PRICE ? newPrice : PRICE; // the new terms first, if they fit
        assertEq(paid, uint256(TOKENS) * 10 * want, "priced by terms the job fits");
        assertLe(market.getJob(jobHash).cost, uint256(TOKENS) * 30 * job.maxPricePerToken, "cap");
    }

    function testFuzzAnyMoveAfterTheJobKeepsItPayable(uint16 start, uint16 width) public {
        start = uint16(bound(start, 0, 29));
        width = uint16(bound(width, 1, 30 - start));
        IJobMarket.Job memory job = _job(client, 1);
        _reconfigure(nodes[2], start, start + width, PRICE);
        bytes32 jobHash = _submitAs(nodes[2], job);
        assertEq(market.getJob(jobHash).amounts[2], uint256(TOKENS) * 10 * PRICE, "paid its part");
    }
}
