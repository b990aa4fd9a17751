// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../interfaces/IBatchSettlement.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {BatchFixture} from "./utils/BatchFixture.sol";

/// @notice Fuzzed batches: what posting debits and finalizing pays for random jobs, random
/// spans and prices; funding at the escrow's edge; every single-field corruption of a leaf
/// is proven and refunds exactly its entry; a sound leaf never is.
contract BatchFuzzTest is BatchFixture {
    uint16 internal constant LAYERS = 30;
    uint256 internal constant SLASH = 50e18;
    /// @dev secp256k1's group order: private keys are below it.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    /// @dev A job's shape before it is signed: caps, deadline, where the route's spans are
    /// cut, tokens served and each hop's price.
    struct Shape {
        uint32 maxTokens;
        uint256 cap;
        uint64 deadline;
        uint16 cut1;
        uint16 cut2;
        uint32 served;
        uint256[3] prices;
    }

    uint256 internal _nonce;

    // ------------------------------------------------------------------ builders

    /// @dev A random sound shape: caps up to 1000 tokens and 1e13 per token-layer, spans cut
    /// anywhere, tokens in [1, maxTokens], prices in [0, cap], deadline a day away.
    function _shape(uint256 r) internal view returns (Shape memory s) {
        s.maxTokens = uint32(bound(r, 1, 1000));
        s.cap = bound(r >> 16, 0, 1e13);
        s.deadline = uint64(block.timestamp + 1 days);
        s.cut1 = uint16(bound(r >> 64, 1, LAYERS - 2));
        s.cut2 = uint16(bound(r >> 72, s.cut1 + 1, LAYERS - 1));
        s.served = uint32(bound(r >> 80, 1, s.maxTokens));
        for (uint256 h = 0; h < 3; ++h) {
            s.prices[h] = bound(r >> (96 + 48 * h), 0, s.cap);
        }
    }

    function _layers(Shape memory s, uint256 h) internal pure returns (uint256) {
        return h == 0 ? s.cut1 : h == 1 ? s.cut2 - s.cut1 : LAYERS - s.cut2;
    }

    /// @dev The job `who` signs (with `key`) for `s`, over the three nodes.
    function _make(address who, uint256 key, Shape memory s) internal returns (IBatchSettlement.BatchedJob memory bj) {
        IJobMarket.Job memory job;
        job.modelId = MODEL;
        job.route = new address[](3);
        job.spanStarts = new uint16[](3);
        job.spanEnds = new uint16[](3);
        (job.spanStarts[0], job.spanEnds[0]) = (0, s.cut1);
        (job.spanStarts[1], job.spanEnds[1]) = (s.cut1, s.cut2);
        (job.spanStarts[2], job.spanEnds[2]) = (s.cut2, LAYERS);
        for (uint256 i = 0; i < 3; ++i) {
            job.route[i] = nodes[i];
        }
        job.maxTokens = s.maxTokens;
        job.maxPricePerToken = s.cap;
        job.nonce = ++_nonce;
        job.deadline = s.deadline;
        job.client = who;
        bj.job = job;
        bj.signature = _sign(market, job, key);
        bj.tokensServed = s.served;
        bj.commitment = COMMITMENT;
        bj.prices = new uint256[](3);
        for (uint256 h = 0; h < 3; ++h) {
            bj.prices[h] = s.prices[h];
        }
    }

    /// @dev Sorts a client's jobs by job hash and numbers the leaves in that order.
    function _sorted(IBatchSettlement.BatchedJob[] memory jobs) internal view returns (IBatchSettlement.BatchedJob[] memory) {
        for (uint256 a = 1; a < jobs.length; ++a) {
            for (uint256 b = a; b > 0 && market.hashJob(jobs[b].job) < market.hashJob(jobs[b - 1].job); --b) {
                (jobs[b], jobs[b - 1]) = (jobs[b - 1], jobs[b]);
            }
        }
        for (uint256 k = 0; k < jobs.length; ++k) {
            jobs[k].index = uint32(k);
        }
        return jobs;
    }

    /// @dev `n` fresh clients sorted by address, with their keys.
    function _clients(uint256 n, uint256 salt) internal pure returns (address[] memory who, uint256[] memory keys) {
        who = new address[](n);
        keys = new uint256[](n);
        for (uint256 c = 0; c < n; ++c) {
            keys[c] = uint256(keccak256(abi.encode("client", salt, c))) % (SECP256K1_N - 1) + 1;
            who[c] = vm.addr(keys[c]);
            for (uint256 b = c; b > 0 && who[b] < who[b - 1]; --b) {
                (who[b], who[b - 1]) = (who[b - 1], who[b]);
                (keys[b], keys[b - 1]) = (keys[b - 1], keys[b]);
            }
        }
    }

    /// @dev Mints `amount` to `who` and deposits all of it.
    function _escrow(address who, uint256 amount) internal {
        _fund(who, amount);
        _deposit(who, amount);
    }

    function _nodeBalances() internal view returns (uint256[3] memory b) {
        for (uint256 i = 0; i < 3; ++i) {
            b[i] = token.balanceOf(nodes[i]);
        }
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

    // ---------------------------------------------------------- pay and debit

    /// @dev A batch built for the pay-and-debit test, with what it must debit and pay.
    struct Built {
        address[] who;
        IBatchSettlement.Entry[] entries;
        IBatchSettlement.BatchedJob[][] jobs;
        uint256[] costs;
        uint256[3] pay;
        uint256[3] reward;
    }

    function _build(uint256 seed, uint256 n, uint256 mMax) internal returns (Built memory t) {
        uint256[] memory keys;
        (t.who, keys) = _clients(n, seed);
        t.entries = new IBatchSettlement.Entry[](n);
        t.jobs = new IBatchSettlement.BatchedJob[][](n);
        t.costs = new uint256[](n);
        uint256 rewardPerToken = market.params().rewardPerToken;
        for (uint256 c = 0; c < n; ++c) {
            uint256 rc = uint256(keccak256(abi.encode(seed, c)));
            t.jobs[c] = new IBatchSettlement.BatchedJob[](1 + rc % mMax);
            for (uint256 k = 0; k < t.jobs[c].length; ++k) {
                Shape memory s = _shape(uint256(keccak256(abi.encode(rc, k))));
                t.jobs[c][k] = _make(t.who[c], keys[c], s);
                for (uint256 h = 0; h < 3; ++h) {
                    uint256 amount = uint256(s.served) * _layers(s, h) * s.prices[h];
                    t.pay[h] += amount;
                    t.costs[c] += amount;
                    t.reward[h] += rewardPerToken * s.served * _layers(s, h) / LAYERS;
                }
            }
            t.jobs[c] = _sorted(t.jobs[c]);
            t.entries[c] = _entryOf(t.who[c], t.jobs[c]);
            // Escrow beyond the debit, so that every entry is funded.
            _escrow(t.who[c], t.costs[c] + bound(rc >> 128, 0, 1e18));
        }
    }

    /// @notice N clients x M jobs with random tokens, spans and prices: posting debits each
    /// client exactly its jobs' cost, the contract agrees the credits are the jobs' (each
    /// entry is demanded and shown), and finalizing pays every node exactly the sum of
    /// tokens x layers x price over its hops (plus the layer share of the reward, when the
    /// pool covers it).
    function testFuzzPostingPaysEveryNodeExactlyAndDebitsEveryClientExactly(
        uint256 seed,
        uint256 clientCount,
        uint256 maxJobs,
        bool rewarded
    ) public {
        uint256 n = bound(clientCount, 1, 3);
        Built memory t = _build(seed, n, bound(maxJobs, 1, 5));
        if (rewarded) {
            vm.prank(other);
            market.fundRewards(t.reward[0] + t.reward[1] + t.reward[2]);
        }
        uint256[] memory before = new uint256[](n);
        for (uint256 c = 0; c < n; ++c) {
            before[c] = market.escrowOf(t.who[c]);
        }
        uint256 id = _post(t.entries);
        uint256 total = 0;
        for (uint256 c = 0; c < n; ++c) {
            assertEq(before[c] - market.escrowOf(t.who[c]), t.costs[c], "client debited exactly its jobs' cost");
            total += t.costs[c];
        }
        IBatchSettlement.Batch memory b = batches.getBatch(id);
        assertEq(b.unfunded, 0, "every entry funded");
        assertEq(b.outstanding, total, "the batch holds every debit");
        assertEq(market.totalBatched(), total, "totalBatched");

        // The contract rebuilds each entry's credits from its jobs: they must match.
        for (uint256 c = 0; c < n; ++c) {
            vm.prank(verifiers[c]);
            batches.demandEntry(id, uint16(c));
            vm.prank(nodes[2]);
            batches.showEntry(_ref(id, t.entries, uint16(c)), t.jobs[c]);
        }

        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory start = _nodeBalances();
        batches.finalizeBatch(id, _payout(t.entries));
        uint256[3] memory paid = _nodeBalances();
        for (uint256 h = 0; h < 3; ++h) {
            uint256 expected = t.pay[h] + (rewarded ? t.reward[h] : 0);
            assertEq(paid[h] - start[h], expected, "node paid tokens x layers x price (and its reward)");
        }
        assertEq(market.totalBatched(), 0, "nothing left in batches");
        _assertConserved(_withAll(t.who));
    }

    /// @notice A random escrow funds the entry iff it covers the debit (edges included): a
    /// funded entry debits exactly its total and is paid, an unfunded one debits and pays
    /// nothing; the other client's entry in the batch is paid either way.
    function testFuzzAnEntryIsFundedIffTheEscrowCoversItsDebit(uint256 seed, uint256 escrow, uint8 mode) public {
        (address[] memory who, uint256[] memory keys) = _clients(2, seed);
        IBatchSettlement.Entry[] memory entries = new IBatchSettlement.Entry[](2);
        uint256[2] memory debit;
        for (uint256 c = 0; c < 2; ++c) {
            uint256 rc = uint256(keccak256(abi.encode(seed, c)));
            IBatchSettlement.BatchedJob[] memory jobs = new IBatchSettlement.BatchedJob[](1 + rc % 4);
            for (uint256 k = 0; k < jobs.length; ++k) {
                Shape memory s = _shape(uint256(keccak256(abi.encode(rc, k))));
                s.prices[0] = bound(s.prices[0], 1, 1e13); // so that no debit is zero
                s.cap = 1e13;
                jobs[k] = _make(who[c], keys[c], s);
            }
            entries[c] = _entryOf(who[c], _sorted(jobs));
            debit[c] = _costOf(entries[c]);
        }
        // Client 0's escrow: anywhere up to twice the debit, or right at its edge.
        uint256 d = debit[0];
        if (mode % 3 == 0) escrow = bound(escrow, 0, 2 * d);
        else if (mode % 3 == 1) escrow = d - 1 + escrow % 3;
        else escrow = bound(escrow, 0, d - 1);
        _escrow(who[0], escrow);
        _escrow(who[1], debit[1]);
        bool funded = escrow >= d;

        vm.expectEmit(true, true, false, true, address(batches));
        emit IBatchSettlement.EntryPosted(1, who[0], 0, d, funded);
        uint256 id = _post(entries);
        assertEq(batches.getBatch(id).unfunded, funded ? 0 : 1, "unfunded bit iff the escrow fell short");
        assertEq(market.escrowOf(who[0]), funded ? escrow - d : escrow, "debited its total or nothing");
        assertEq(market.escrowOf(who[1]), 0, "the other client debited in full");
        assertEq(market.totalBatched(), debit[1] + (funded ? d : 0), "the batch holds the funded debits");

        if (!funded) {
            // An unfunded entry cannot be demanded or proven: it pays nothing anyway.
            vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.EntryNotLive.selector, id, uint16(0)));
            vm.prank(verifiers[0]);
            batches.demandEntry(id, 0);
        }
        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory start = _nodeBalances();
        batches.finalizeBatch(id, _payout(entries, funded ? 0 : 1));
        uint256[3] memory paid = _nodeBalances();
        for (uint256 i = 0; i < 3; ++i) {
            uint256 expected = entries[1].credits[i].amount + (funded ? entries[0].credits[i].amount : 0);
            assertEq(paid[i] - start[i], expected, "nodes paid the funded entries only");
        }
        assertEq(market.escrowOf(who[0]), funded ? escrow - d : escrow, "an unfunded client keeps its escrow");
        _assertConserved(_withAll(who));
    }

    // ------------------------------------------------------------ corruptions

    /// @dev A batch of a client's entry with one corrupted leaf beside an honest entry.
    struct Corrupted {
        address[] who;
        IBatchSettlement.Entry[] entries;
        IBatchSettlement.BatchedJob[] jobs;
        uint256 index;
        IBatchSettlement.Fault fault;
        uint256 debit;
    }

    function _buildCorrupted(uint256 seed, uint8 field, uint256 delta) internal returns (Corrupted memory t) {
        uint256[] memory keys;
        (t.who, keys) = _clients(2, seed);
        uint256 m = 1 + seed % 5;
        uint256 bad = (seed >> 8) % m;
        t.jobs = new IBatchSettlement.BatchedJob[](m);
        bytes32 badHash;
        for (uint256 k = 0; k < m; ++k) {
            Shape memory s = _shape(uint256(keccak256(abi.encode(seed, k))));
            uint256 key = keys[0];
            if (k == bad) (s, key, t.fault) = _corrupt(s, key, field, delta);
            t.jobs[k] = _make(t.who[0], key, s);
            if (k == bad) badHash = market.hashJob(t.jobs[k].job);
        }
        t.jobs = _sorted(t.jobs);
        while (market.hashJob(t.jobs[t.index].job) != badHash) ++t.index;

        IBatchSettlement.BatchedJob[] memory honest = new IBatchSettlement.BatchedJob[](2);
        honest[0] = _make(t.who[1], keys[1], _shape(uint256(keccak256(abi.encode(seed, "honest", 0)))));
        honest[1] = _make(t.who[1], keys[1], _shape(uint256(keccak256(abi.encode(seed, "honest", 1)))));
        t.entries = new IBatchSettlement.Entry[](2);
        t.entries[0] = _entryOf(t.who[0], t.jobs);
        t.entries[1] = _entryOf(t.who[1], _sorted(honest));
        t.debit = _costOf(t.entries[0]);
        _escrow(t.who[0], t.debit);
        _escrow(t.who[1], _costOf(t.entries[1]));
    }

    /// @notice One leaf among one to five, with exactly one field corrupted (tokens above
    /// maxTokens, a price above the cap, the wrong signer's key, a deadline before posting),
    /// is proven by `proveBadLeaf` at any time in the window: the entry is voided with that
    /// fault, its client gets exactly its debit back, the poster loses the slash and the
    /// prover gets the bounty; the other entry of the batch is paid in full.
    function testFuzzAnyCorruptedLeafIsProvenAndRefundsExactlyTheDebit(
        uint256 seed,
        uint8 field,
        uint256 delta,
        uint256 wait
    ) public {
        Corrupted memory t = _buildCorrupted(seed, field, delta);
        uint256 id = _post(t.entries);
        assertEq(market.escrowOf(t.who[0]), 0, "debited in full");
        vm.warp(block.timestamp + bound(wait, 0, 1 hours - 1));

        uint256 proverBefore = token.balanceOf(verifiers[0]);
        uint256 stakeBefore = registry.getNode(nodes[2]).stake;
        IBatchSettlement.EntryRef memory ref = _ref(id, t.entries, 0);
        bytes32[] memory proof = _proofOf(_leaves(t.jobs), t.index);
        vm.expectEmit(true, true, true, true, address(batches));
        emit IBatchSettlement.EntryVoided(id, 0, t.who[0], t.fault, t.debit, SLASH);
        vm.prank(verifiers[0]);
        batches.proveBadLeaf(ref, t.jobs[t.index], proof);

        assertEq(market.escrowOf(t.who[0]), t.debit, "refunded exactly the entry's debit");
        assertEq(batches.getBatch(id).voided, 1, "voided");
        assertEq(batches.getBatch(id).outstanding, _costOf(t.entries[1]), "the batch holds the other entry only");
        assertEq(stakeBefore - registry.getNode(nodes[2]).stake, SLASH, "poster slashed");
        assertEq(token.balanceOf(verifiers[0]) - proverBefore, SLASH * 2_000 / 10_000, "prover's bounty");
        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.EntryNotLive.selector, id, uint16(0)));
        batches.proveBadLeaf(ref, t.jobs[t.index], proof);

        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory start = _nodeBalances();
        batches.finalizeBatch(id, _payout(t.entries));
        uint256[3] memory paid = _nodeBalances();
        for (uint256 i = 0; i < 3; ++i) {
            // The slash's rest sits in the reward pool, which now rewards the honest entry.
            uint256 expected = t.entries[1].credits[i].amount + t.entries[1].credits[i].reward;
            assertEq(paid[i] - start[i], expected, "the honest entry paid in full, the voided one nothing");
        }
        assertEq(market.escrowOf(t.who[0]), t.debit, "the voided client keeps its refund");
        assertEq(market.totalBatched(), 0, "nothing left in batches");
        _assertConserved(_withAll(t.who));
    }

    /// @dev Breaks exactly one rule of a sound shape.
    function _corrupt(Shape memory s, uint256 key, uint8 field, uint256 delta)
        internal
        view
        returns (Shape memory, uint256, IBatchSettlement.Fault)
    {
        uint256 f = field % 4;
        if (f == 0) {
            s.served = uint32(bound(delta, uint256(s.maxTokens) + 1, type(uint32).max));
            return (s, key, IBatchSettlement.Fault.BadTokens);
        }
        if (f == 1) {
            s.prices[(delta >> 200) % 3] = s.cap + bound(delta, 1, 1e30);
            return (s, key, IBatchSettlement.Fault.BadPrices);
        }
        if (f == 2) {
            uint256 wrong = bound(delta, 1, SECP256K1_N - 1);
            if (wrong == key) wrong = wrong == 1 ? 2 : wrong - 1;
            return (s, wrong, IBatchSettlement.Fault.BadSignature);
        }
        s.deadline = uint64(block.timestamp - bound(delta, 1, block.timestamp));
        return (s, key, IBatchSettlement.Fault.Expired);
    }

    /// @notice Leaves at every edge of soundness (tokens 1 or maxTokens, prices 0 or the
    /// cap, deadline exactly the posting time) and anywhere between: `proveBadLeaf` reverts
    /// LeafSound on every one, at any time in the window, and the batch pays in full.
    function testFuzzASoundLeafIsNeverProvable(uint256 seed, uint256 edges, uint256 wait) public {
        (address[] memory who, uint256[] memory keys) = _clients(1, seed);
        uint256 m = 1 + seed % 5;
        IBatchSettlement.BatchedJob[] memory jobs = new IBatchSettlement.BatchedJob[](m);
        for (uint256 k = 0; k < m; ++k) {
            Shape memory s = _shape(uint256(keccak256(abi.encode(seed, k))));
            uint256 e = edges >> (8 * k);
            if (e & 1 != 0) s.served = s.maxTokens;
            if (e & 2 != 0) s.served = 1;
            if (e & 4 != 0) s.prices[(e >> 4) % 3] = s.cap;
            if (e & 8 != 0) s.prices[(e >> 6) % 3] = 0;
            if (e & 64 != 0) s.deadline = uint64(block.timestamp);
            jobs[k] = _make(who[0], keys[0], s);
        }
        jobs = _sorted(jobs);
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(who[0], jobs));
        _escrow(who[0], _costOf(entries[0]));
        uint256 id = _post(entries);
        vm.warp(block.timestamp + bound(wait, 0, 1 hours - 1));

        bytes32[] memory leaves = _leaves(jobs);
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, 0);
        for (uint256 k = 0; k < m; ++k) {
            vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.LeafSound.selector, market.hashJob(jobs[k].job)));
            vm.prank(verifiers[k % 5]);
            batches.proveBadLeaf(ref, jobs[k], _proofOf(leaves, k));
        }
        assertEq(batches.getBatch(id).voided, 0, "nothing voided");

        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory start = _nodeBalances();
        batches.finalizeBatch(id, _payout(entries));
        uint256[3] memory paid = _nodeBalances();
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(paid[i] - start[i], entries[0].credits[i].amount, "paid in full");
        }
        _assertConserved(_withAll(who));
    }

    // -------------------------------------------- contract bugs (failing on purpose)

    /// @notice Proof of concept: once a dispute lifted a job out of its entry, its pay had
    /// left the entry's credits, so the same sound leaf looked "not credited" and anyone
    /// could void the honest entry with it. A lifted leaf now proves nothing.
    function testPocALiftedLeafCannotVoidItsHonestEntry() public {
        IBatchSettlement.BatchedJob[] memory jobs = new IBatchSettlement.BatchedJob[](2);
        jobs[0] = _batched(client, CLIENT_KEY, 1, 0, 40);
        jobs[1] = _batched(client, CLIENT_KEY, 2, 0, 8);
        jobs = _sorted(jobs);
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(client, jobs));
        uint256 id = _post(entries);
        uint256 big = jobs[0].tokensServed == 40 ? 0 : 1;
        IBatchSettlement.EntryRef memory ref = _ref(id, entries, 0);
        bytes32[] memory proof = _proofOf(_leaves(jobs), big);
        vm.prank(verifiers[0]);
        court.openBatchedDispute(ref, jobs[big], proof, 1, FAULT, EVIDENCE, BOND);
        uint256 stake = registry.getNode(nodes[2]).stake;
        bytes32 jobHash = market.hashJob(jobs[big].job);

        vm.expectRevert(abi.encodeWithSelector(IBatchSettlement.LeafSound.selector, jobHash));
        vm.prank(verifiers[1]);
        batches.proveBadLeaf(ref, jobs[big], proof);
        assertEq(batches.getBatch(id).voided, 0, "the honest entry stands");
        assertEq(registry.getNode(nodes[2]).stake, stake, "the honest poster keeps its stake");
    }

    /// @notice Proof of concept: nothing on chain records that a batch paid a job, so a route
    /// node could submit the same signed job on its own after the batch (before the job's
    /// deadline) and charge the client twice. `proveResubmitted` undoes the later copy, even
    /// once the batch is final: the client is refunded and the submitter slashed.
    function testPocABatchedJobSubmittedAgainOnItsOwnIsUndone() public {
        IBatchSettlement.BatchedJob[] memory jobs = new IBatchSettlement.BatchedJob[](1);
        jobs[0] = _batched(client, CLIENT_KEY, 1, 0, 16);
        jobs[0].job.deadline = uint64(block.timestamp + 1 days);
        jobs[0].signature = _sign(market, jobs[0].job, CLIENT_KEY);
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(client, jobs));
        uint256 cost = _costOf(entries[0]);
        uint256 escrowBefore = market.escrowOf(client);
        uint256 id = _post(entries);
        vm.warp(block.timestamp + 1 hours);
        batches.finalizeBatch(id, _payout(entries));

        vm.prank(nodes[0]);
        market.submitResult(jobs[0].job, jobs[0].signature, 16, COMMITMENT);
        assertEq(escrowBefore - market.escrowOf(client), 2 * cost, "the attack: charged twice");
        uint256 stake = registry.getNode(nodes[0]).stake;

        IBatchSettlement.EntryRef memory ref = _ref(id, entries, 0);
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[0]);
        vm.prank(verifiers[0]);
        batches.proveResubmitted(ref, leaf, new bytes32[](0));
        assertEq(escrowBefore - market.escrowOf(client), cost, "the fix: charged once");
        assertEq(registry.getNode(nodes[0]).stake, stake - 50e18, "the resubmitter is slashed");
        assertTrue(market.getJob(market.hashJob(jobs[0].job)).status == IJobMarket.JobStatus.Challenged, "undone");

        // The batch's own poster is no resubmitter: proving against a lifted or earlier copy fails.
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobNotPending.selector, market.hashJob(jobs[0].job)));
        batches.proveResubmitted(ref, leaf, new bytes32[](0));
        _assertConserved(_actors());
    }

    /// @notice Proof of concept: `proveReplay` voided whichever entry the prover named
    /// second, so another node of a job's route could post an honest poster's jobs again
    /// later and have the earlier, honest entry voided. Only the later copy is voided now.
    function testPocAReplayProofVoidsTheLaterCopyNotTheEarlierPosting() public {
        IBatchSettlement.BatchedJob[] memory jobs = _clientJobs(client, CLIENT_KEY, 1, 2, 16);
        IBatchSettlement.Entry[] memory entries = _one(_entryOf(client, jobs));
        uint256 honest = _post(entries);
        vm.warp(block.timestamp + 10 minutes);
        vm.prank(nodes[0]);
        uint256 copy = batches.postBatch(entries);
        bytes32[] memory proof = _proofOf(_leaves(jobs), 0);
        IBatchSettlement.Leaf memory leaf = _leafOf(jobs[0]);
        IBatchSettlement.EntryRef memory copyRef = _ref(copy, entries, 0);
        IBatchSettlement.EntryRef memory honestRef = _ref(honest, entries, 0);
        uint256 stake = registry.getNode(nodes[2]).stake;
        uint256 copierStake = registry.getNode(nodes[0]).stake;

        vm.expectRevert(IBatchSettlement.NotAReplay.selector);
        vm.prank(nodes[0]);
        batches.proveReplay(copyRef, leaf, proof, honestRef, leaf, proof);
        assertEq(batches.getBatch(honest).voided, 0, "the earlier, honest posting stands");
        assertEq(registry.getNode(nodes[2]).stake, stake, "the honest poster keeps its stake");

        vm.prank(verifiers[0]);
        batches.proveReplay(honestRef, leaf, proof, copyRef, leaf, proof);
        assertEq(batches.getBatch(copy).voided, 1, "the later copy is voided");
        assertEq(registry.getNode(nodes[0]).stake, copierStake - 50e18, "the copier is slashed");
        _assertConserved(_actors());
    }
}
