// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../interfaces/IBatchSettlement.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {ContractWallet} from "./mocks/ContractWallet.sol";
import {vm} from "./utils/Vm.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

/// @notice Posting and finalizing batches, the escrow they debit, and what they pay.
contract BatchSettlementTest is BatchFixture {
    uint32 internal constant TOKENS = 16;
    /// @dev A 3-hop job of TOKENS tokens over 30 layers at PRICE per layer-token.
    uint256 internal constant JOB_COST = TOKENS * 30 * PRICE;

    function setUp() public override {
        super.setUp();
        _deposit(other, 100e18);
    }

    /// @dev Entries for `client` (4 jobs) and `other` (3 jobs), sorted by client address.
    function _twoClients() internal view returns (IBatchSettlement.Entry[] memory entries) {
        IBatchSettlement.Entry memory a = _entryOf(client, _clientJobs(client, CLIENT_KEY, 1, 4, TOKENS));
        IBatchSettlement.Entry memory b = _entryOf(other, _clientJobs(other, OTHER_KEY, 1, 3, TOKENS));
        entries = new IBatchSettlement.Entry[](2);
        (entries[0], entries[1]) = client < other ? (a, b) : (b, a);
    }

    function _balances() internal view returns (uint256[3] memory b) {
        for (uint256 i = 0; i < 3; ++i) {
            b[i] = token.balanceOf(nodes[i]);
        }
    }

    function testPostDebitsEachClientOnceAndFinalizePaysEachNodeOnce() public {
        IBatchSettlement.Entry[] memory entries = _twoClients();
        uint256 clientBefore = market.escrowOf(client);
        uint256 otherBefore = market.escrowOf(other);
        uint256 id = _post(entries);

        assertEq(market.escrowOf(client), clientBefore - 4 * JOB_COST, "client debited for its four jobs");
        assertEq(market.escrowOf(other), otherBefore - 3 * JOB_COST, "other debited for its three jobs");
        assertEq(market.totalBatched(), 7 * JOB_COST, "the batch holds both debits");
        IBatchSettlement.Batch memory b = batches.getBatch(id);
        assertEq(b.outstanding, 7 * JOB_COST, "outstanding");
        assertEq(b.poster, nodes[2], "poster");
        _assertConserved(_actors());

        vm.expectRevert(
            abi.encodeWithSelector(IBatchSettlement.WindowOpen.selector, id, uint256(b.postedAt) + 1 hours)
        );
        batches.finalizeBatch(id, _payout(entries));

        uint256[3] memory before = _balances();
        uint256 pool = market.rewardPool();
        vm.warp(block.timestamp + 1 hours);
        vm.prank(other); // anyone may finalize
        batches.finalizeBatch(id, _payout(entries));
        uint256[3] memory afterPay = _balances();
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(afterPay[i] - before[i], 7 * TOKENS * 10 * PRICE, "each node paid for its ten layers");
        }
        assertEq(market.totalBatched(), 0, "nothing left in batches");
        assertEq(market.rewardPool(), pool, "an empty pool pays no reward");
        _assertConserved(_actors());

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BatchNotPending.selector, id));
        batches.finalizeBatch(id, _payout(entries));
    }

    function testRewardsFromThePoolAreSplitByLayers() public {
        vm.prank(other);
        market.fundRewards(10e18);
        IBatchSettlement.Entry[] memory entries = _twoClients();
        uint256 id = _post(entries);
        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory before = _balances();
        batches.finalizeBatch(id, _payout(entries));
        uint256[3] memory afterPay = _balances();
        uint256 reward = 7 * (1e15 * uint256(TOKENS) * 10 / 30);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(afterPay[i] - before[i], 7 * TOKENS * 10 * PRICE + reward, "pay plus a third of the reward");
        }
        _assertConserved(_actors());
    }

    function testAShortPoolIsSharedInProportion() public {
        vm.prank(other);
        market.fundRewards(3e15);
        IBatchSettlement.Entry[] memory entries = _twoClients();
        uint256 id = _post(entries);
        vm.warp(block.timestamp + 1 hours);
        batches.finalizeBatch(id, _payout(entries));
        assertLe(market.rewardPool(), 2, "the pool is spent but for rounding");
        _assertConserved(_actors());
    }

    function testFinalizeNeedsThePayoutAsPosted() public {
        IBatchSettlement.Entry[] memory entries = _twoClients();
        uint256 id = _post(entries);
        vm.warp(block.timestamp + 1 hours);
        IBatchSettlement.Payout memory payout = _payout(entries);
        payout.amounts[0] += 1;
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.PayoutMismatch.selector, id));
        batches.finalizeBatch(id, payout);
        payout.amounts[0] -= 1;
        (payout.nodes[0], payout.nodes[1]) = (payout.nodes[1], payout.nodes[0]);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.PayoutMismatch.selector, id));
        batches.finalizeBatch(id, payout);
    }

    function testOnlyActiveNodesPostOrAreCredited() public {
        IBatchSettlement.Entry[] memory entries = _twoClients();
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.NodeNotActive.selector, other));
        vm.prank(other);
        batches.postBatch(entries);

        entries[0].credits[0].node = address(0x0999); // sorted first, never staked
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.NodeNotActive.selector, address(0x0999)));
        _post(entries);
    }

    function testMalformedEntriesAreRefused() public {
        IBatchSettlement.Entry[] memory entries = _twoClients();
        (entries[0], entries[1]) = (entries[1], entries[0]);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BadEntry.selector, uint16(1)));
        _post(entries);

        entries = _twoClients();
        (entries[0].credits[0], entries[0].credits[1]) = (entries[0].credits[1], entries[0].credits[0]);
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BadEntry.selector, uint16(0)));
        _post(entries);

        entries = _twoClients();
        entries[1].jobs = 65;
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BadEntry.selector, uint16(1)));
        _post(entries);

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.BadBatchSize.selector, uint256(0)));
        _post(new IBatchSettlement.Entry[](0));
    }

    /// @notice One client's concurrent jobs with several nodes add up to more than its
    /// escrow: the batch posted first is paid; a later entry that the escrow no longer covers
    /// is posted unfunded, debits nothing and pays nothing, and the rest of its batch is paid.
    function testAnEntryOverTheEscrowIsUnfundedAndTheRestOfItsBatchIsPaid() public {
        address poor = vm.addr(OTHER2_KEY);
        _fund(poor, 1e18);
        _deposit(poor, 5 * JOB_COST);
        // Three jobs with one poster's batch, three more with another batch: six against five.
        IBatchSettlement.Entry memory first = _entryOf(poor, _clientJobs(poor, OTHER2_KEY, 1, 3, TOKENS));
        IBatchSettlement.Entry memory second = _entryOf(poor, _clientJobs(poor, OTHER2_KEY, 10, 3, TOKENS));
        uint256 a = _post(_one(first));
        assertEq(market.escrowOf(poor), 2 * JOB_COST, "first batch debited three jobs");

        IBatchSettlement.Entry memory rich = _entryOf(other, _clientJobs(other, OTHER_KEY, 1, 2, TOKENS));
        IBatchSettlement.Entry[] memory entries = new IBatchSettlement.Entry[](2);
        (entries[0], entries[1]) = poor < other ? (second, rich) : (rich, second);
        uint16 poorIndex = poor < other ? 0 : 1;
        vm.expectEmit(true, true, false, true, address(batches));
        emit IBatchSettlement.EntryPosted(2, poor, poorIndex, 3 * JOB_COST, false);
        uint256 b = _post(entries);
        assertEq(market.escrowOf(poor), 2 * JOB_COST, "the unfunded entry debited nothing");
        assertEq(batches.getBatch(b).unfunded, 1 << poorIndex, "marked unfunded");

        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory before = _balances();
        batches.finalizeBatch(a, _payout(_one(first)));
        batches.finalizeBatch(b, _payout(entries, 1 << poorIndex));
        uint256[3] memory afterPay = _balances();
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(afterPay[i] - before[i], 5 * TOKENS * 10 * PRICE, "paid for the five funded jobs only");
        }
        assertEq(market.escrowOf(poor), 2 * JOB_COST, "the client keeps what it was not charged");
        _assertConserved(_with(poor));
    }

    function testAClientsWithdrawalWaitsOutEveryJobItSigned() public {
        IBatchSettlement.Entry memory e = _entryOf(other, _clientJobs(other, OTHER_KEY, 1, 2, TOKENS));
        vm.prank(other);
        market.requestWithdrawal(100e18);
        // Jobs signed before the request can still be posted before it is ready.
        vm.warp(block.timestamp + 30 minutes);
        _post(_one(e));
        vm.warp(block.timestamp + 2 days);
        uint256 before = token.balanceOf(other);
        vm.prank(other);
        market.withdraw();
        assertEq(token.balanceOf(other) - before, 100e18 - 2 * JOB_COST, "withdraws what the batch did not take");
        _assertConserved(_actors());
    }
}
