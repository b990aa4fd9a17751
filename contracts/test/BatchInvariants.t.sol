// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../interfaces/IBatchSettlement.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {BatchHandler} from "./utils/BatchHandler.sol";

/// @notice Invariants of batched settlement over random sequences of handler actions (see
/// BatchHandler): where every token is, what the batches still owe, what clients pay and
/// nodes receive, and that every proof, demand and finalization has the outcome the rules
/// give it.
contract BatchInvariantsTest is MarketFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    uint256 internal constant POSTER_STAKE = 20_000e18;

    BatchHandler internal handler;

    function setUp() public override {
        super.setUp();
        _stakeNodes();
        // The poster is slashed once per voided entry: stake enough for every run.
        token.mint(nodes[2], POSTER_STAKE);
        vm.prank(nodes[2]);
        registry.stake(POSTER_STAKE, _config(20, 30, PRICE));

        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (0xA11CE, 0xB0B, 0xCA201);
        for (uint256 i = 0; i < 3; ++i) {
            _fund(vm.addr(keys[i]), 1e18);
        }
        address[] memory watchers = new address[](5);
        for (uint256 i = 0; i < 5; ++i) {
            watchers[i] = verifiers[i];
        }
        address[] memory bystanders = new address[](1);
        bystanders[0] = client;
        handler = new BatchHandler(token, registry, market, batches, keys, nodes, watchers, other, bystanders);
        // Escrow of a few entries each, so that some entries are funded and some are not.
        for (uint256 i = 0; i < 3; ++i) {
            handler.deposit(i, 2e16);
        }
    }

    /// @dev Read by the invariant fuzzer: only the handler is called, and only its actions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](12);
        s[0] = BatchHandler.deposit.selector;
        s[1] = BatchHandler.requestWithdrawal.selector;
        s[2] = BatchHandler.withdraw.selector;
        s[3] = BatchHandler.fundRewards.selector;
        s[4] = BatchHandler.warp.selector;
        s[5] = BatchHandler.postBatch.selector;
        s[6] = BatchHandler.finalize.selector;
        s[7] = BatchHandler.proveBadLeaf.selector;
        s[8] = BatchHandler.proveReplay.selector;
        s[9] = BatchHandler.demand.selector;
        s[10] = BatchHandler.show.selector;
        s[11] = BatchHandler.forfeit.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), s);
    }

    // -------------------------------------------------------------- invariants

    /// Sum of wallets + registry + market + court + batches == totalSupply; the market holds
    /// exactly escrows, locked, batched and the pool; the batch contract exactly the bonds of
    /// the demands still open.
    function invariantEveryTokenIsInExactlyOnePlace() public view {
        _checkTokens();
    }

    /// market.totalBatched() == the outstanding of every posted, unfinalized batch, and each
    /// batch's outstanding, bitmaps and status are what the handler's books say.
    function invariantTotalBatchedIsWhatPendingBatchesStillOwe() public view {
        _checkBatches();
    }

    /// A client is debited exactly its funded, non-voided entries, and never more than the
    /// sound jobs it signed in them (each job once) but for entries still open to proof.
    function invariantNoClientPaysForMoreThanItsSoundJobs() public view {
        _checkClients();
    }

    /// A node receives its credits' pay in full, and at most pay plus reward, over the
    /// funded, non-voided entries of finalized batches.
    function invariantNoNodeIsPaidMoreThanItsCredits() public view {
        _checkNodes();
    }

    function invariantNoBatchFinalizesTwice() public view {
        assertTrue(!handler.finalizedTwice(), "a batch finalized twice");
        assertTrue(!handler.finalizeMisjudged(), "finalize succeeded or failed against the rules");
    }

    /// A voided entry's client got exactly its debit back, and the poster lost the slash.
    function invariantAVoidedEntryRefundsExactlyItsDebit() public view {
        _checkVoids();
    }

    /// Bad leaves and replays in live entries are always provable, sound leaves never; a
    /// demand, an answer and a forfeit succeed exactly when the rules allow.
    function invariantProofsAndDemandsFollowTheRules() public view {
        _checkRules();
    }

    /// @notice A fixed sequence through every handler path, so that a handler that never
    /// reaches one is noticed (the fuzzer would not say so).
    function testHandlerReachesEveryPath() public {
        for (uint256 s = 0; s < 24; ++s) {
            handler.postBatch(s, uint256(keccak256(abi.encode("seed", s))));
            if (s % 3 == 0) handler.warp(4 * 5 minutes);
            if (s % 4 == 1) handler.demand(s * 7, s);
            if (s % 8 == 2) handler.show(s);
            if (s % 8 == 6) handler.forfeit(s, 0);
            if (s % 5 == 3) handler.proveBadLeaf(s * 3, 0);
            if (s % 5 == 4) handler.proveReplay(s, 1);
            if (s % 4 != 3) handler.deposit(s, 3e16);
            handler.fundRewards(1e16);
            _checkAll();
        }
        handler.requestWithdrawal(0, 1e15);
        handler.withdraw(0, true);
        for (uint256 b = 0; b < handler.batchCount(); ++b) {
            handler.finalize(b, true);
            handler.show(b);
            handler.forfeit(b, 0);
            handler.finalize(b, true);
            handler.finalize(b, false); // a second time must fail
        }
        _checkAll();
        assertTrue(handler.posts() > 0, "posts");
        assertTrue(handler.unfundedEntries() > 0, "unfunded entries");
        assertTrue(handler.badLeavesPosted() > 0, "bad leaves posted");
        assertTrue(handler.replaysPosted() > 0, "replays posted");
        assertTrue(handler.badLeafProofs() > 0, "bad leaves proven");
        assertTrue(handler.replayProofs() > 0, "replays proven");
        assertTrue(handler.shows() > 0, "entries shown");
        assertTrue(handler.forfeits() > 0, "entries forfeited");
        assertTrue(handler.finalizations() > 0, "batches finalized");
        assertTrue(handler.withdrawals() > 0, "withdrawals");
        assertEq(market.totalBatched(), 0, "every batch finalized");
    }

    // ------------------------------------------------------------------ checks

    function _checkAll() internal view {
        _checkTokens();
        _checkBatches();
        _checkClients();
        _checkNodes();
        _checkVoids();
        _checkRules();
        assertTrue(!handler.finalizedTwice(), "a batch finalized twice");
        assertTrue(!handler.finalizeMisjudged(), "finalize succeeded or failed against the rules");
    }

    function _checkTokens() internal view {
        address[] memory actors = handler.actors();
        uint256 wallets = 0;
        uint256 escrows = 0;
        uint256 stakes = 0;
        for (uint256 i = 0; i < actors.length; ++i) {
            wallets += token.balanceOf(actors[i]);
            escrows += market.escrowOf(actors[i]);
            stakes += registry.getNode(actors[i]).stake;
        }
        uint256 places = token.balanceOf(address(registry)) + token.balanceOf(address(market))
            + token.balanceOf(address(court)) + token.balanceOf(address(batches));
        assertEq(wallets + places, token.totalSupply(), "sum of all places == totalSupply");
        assertEq(escrows, market.totalEscrow(), "escrows add up");
        assertEq(stakes, token.balanceOf(address(registry)), "registry holds exactly the node stakes");
        assertEq(
            token.balanceOf(address(market)),
            market.totalEscrow() + market.totalLocked() + market.totalBatched() + market.rewardPool(),
            "market holds exactly escrows, locked, batched and the pool"
        );
        assertEq(
            token.balanceOf(address(court)), court.totalVerifierStake() + court.totalHeld(), "court holds its books"
        );
        uint256 open = 0;
        for (uint256 id = 1; id <= batches.batchCount(); ++id) {
            open += batches.getBatch(id).openDemands;
        }
        uint256 bond = batches.params().demandBond;
        assertEq(token.balanceOf(address(batches)), open * bond, "batches hold exactly the open demands' bonds");
        assertEq(token.balanceOf(address(batches)), handler.openBonds(), "open bonds by the handler's books");
    }

    function _checkBatches() internal view {
        uint256 n = handler.batchCount();
        assertEq(batches.batchCount(), n, "every batch is the handler's");
        uint256 pending = 0;
        for (uint256 bi = 0; bi < n; ++bi) {
            (
                uint256 id,
                uint256 owed,
                uint256 unfunded,
                uint256 voided,
                uint256 demanded,
                uint256 openDemands,
                uint256 finalizeCount
            ) = handler.batchBooks(bi);
            IBatchSettlement.Batch memory b = batches.getBatch(id);
            assertEq(b.unfunded, unfunded, "unfunded bitmap");
            assertEq(b.voided, voided, "voided bitmap");
            assertEq(b.demanded, demanded, "demanded bitmap");
            assertEq(b.openDemands, openDemands, "open demands");
            assertEq(b.lifted, 0, "nothing lifted");
            assertLe(finalizeCount, 1, "finalized at most once");
            if (b.status == IBatchSettlement.BatchStatus.Posted) {
                assertEq(finalizeCount, 0, "a pending batch was never finalized");
                assertEq(b.outstanding, owed, "outstanding == debits of the live entries");
                pending += b.outstanding;
            } else {
                assertTrue(b.status == IBatchSettlement.BatchStatus.Finalized, "posted or finalized");
                assertEq(finalizeCount, 1, "a finalized batch finalized once");
                assertEq(b.outstanding, 0, "a finalized batch owes nothing");
            }
        }
        assertEq(market.totalBatched(), pending, "totalBatched == outstanding of pending batches");
        assertEq(market.totalLocked(), 0, "no job records: nothing lifted or submitted");
    }

    function _checkClients() internal view {
        assertTrue(!handler.wrongFunding(), "an entry funded iff the escrow covered it");
        assertTrue(!handler.wrongDebit(), "a funded entry debits exactly its total, an unfunded one nothing");
        for (uint256 c = 0; c < handler.clientCount(); ++c) {
            address who = handler.clients(c);
            uint256 net = handler.deposited(who) - handler.withdrawn(who) - market.escrowOf(who);
            (uint256 liveDebit, uint256 soundCost, uint256 openExcess, bool closedExcess) = handler.clientBooks(c);
            assertEq(net, liveDebit, "a client is debited exactly its funded, non-voided entries");
            assertLe(net, soundCost + openExcess, "debited beyond its sound jobs");
            assertTrue(!closedExcess, "an entry charging beyond its sound jobs outlived its window");
        }
    }

    function _checkNodes() internal view {
        assertTrue(!handler.wrongPay(), "a finalize paid a node other than its credits");
        for (uint256 i = 0; i < 3; ++i) {
            address node = handler.nodeAt(i);
            (uint256 amount, uint256 reward) = handler.nodeCredits(i);
            uint256 paid = handler.paidOut(node);
            assertLe(paid, amount + reward, "a node paid more than its credits");
            assertLe(amount, paid, "a node paid less than its credits' pay");
        }
    }

    function _checkVoids() internal view {
        assertTrue(handler.voidsRefundedExactly(), "a voided entry's client got other than its debit back");
        assertTrue(!handler.wrongRefund(), "a void refunded other than the debit");
        assertTrue(!handler.wrongSlash(), "a void slashed the poster other than the slash amount");
    }

    function _checkRules() internal view {
        assertTrue(!handler.postRejected(), "a well-formed batch was refused");
        assertTrue(!handler.soundLeafProven(), "a sound leaf was proven bad");
        assertTrue(!handler.badLeafNotProven(), "a bad leaf of a live entry could not be proven");
        assertTrue(!handler.replayMisjudged(), "a replay proof succeeded or failed against the rules");
        assertTrue(!handler.demandMisjudged(), "a demand succeeded or failed against the rules");
        assertTrue(!handler.showMisjudged(), "an answer succeeded or failed against the rules");
        assertTrue(!handler.forfeitMisjudged(), "a forfeit succeeded or failed against the rules");
        assertTrue(!handler.wrongBond(), "a bond moved other than the rules say");
    }
}
