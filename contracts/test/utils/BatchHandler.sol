// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleTree} from "./MerkleTree.sol";
import {ShareToken} from "../../ShareToken.sol";
import {NodeRegistry} from "../../NodeRegistry.sol";
import {JobMarket} from "../../JobMarket.sol";
import {BatchSettlement} from "../../BatchSettlement.sol";
import {IBatchSettlement} from "../../interfaces/IBatchSettlement.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {vm} from "./Vm.sol";
import {Test} from "./Test.sol";

/// @notice The batch invariant fuzzer's only target: clients move escrow, one poster node
/// posts batches of one to three entries (one to four jobs each, some over the escrow, some
/// with a deliberately bad leaf, some replaying a job already posted), time passes, batches
/// finalize, and watchers prove, demand and forfeit. Every call may fail; the handler keeps
/// its own books of what each entry debits and holds, and ghost flags record any call whose
/// outcome differs from what the rules say it must be.
/// @dev An honest watcher is online: before time passes the end of a batch's challenge
/// window, it proves every live entry of that batch that holds a bad leaf or a replay (see
/// `_warpTo`). Random proofs, demands and finalizations happen in between.
contract BatchHandler is Test {
    bytes32 internal constant MODEL = keccak256("SmolLM2-135M-Instruct");
    bytes32 internal constant COMMITMENT = keccak256("receipts");
    uint32 public constant MAX_TOKENS = 64;
    uint256 public constant CAP = 1e13;
    uint16 internal constant LAYERS = 30;
    uint256 internal constant FORGER_KEY = 0xF0F0F0;

    /// @dev How a leaf was built: sound, or breaking exactly one rule.
    uint8 internal constant SOUND = 0;
    uint8 internal constant FORGED = 1;
    uint8 internal constant OVER_TOKENS = 2;
    uint8 internal constant OVER_PRICE = 3;
    uint8 internal constant EXPIRED = 4;

    ShareToken public immutable token;
    NodeRegistry public immutable registry;
    JobMarket public immutable market;
    BatchSettlement public immutable batches;
    uint64 internal immutable _window;
    uint256 internal immutable _bond;
    uint256 internal immutable _rewardPerToken;

    /// @dev Clients sorted by address, so that a batch's entries are in order.
    address[] public clients;
    uint256[] internal _keys;
    address[3] internal _nodes;
    address public immutable poster;
    /// @dev Verifier accounts: the last is the watcher, the others demand.
    address[] internal _watchers;
    address public immutable sponsor;
    address[] internal _bystanders;

    /// @dev One leaf of a posted entry.
    struct JobSpec {
        uint8 client;
        uint8 bad;
        bool replay;
        uint32 served;
        uint32 index;
        uint64 deadline;
        uint256 nonce;
        uint256 entry;
        uint256 cost;
        bytes32 jobHash;
        bytes32 leaf;
        uint256[3] prices;
    }

    /// @dev One entry of a posted batch, as the handler's books hold it.
    struct EntryRec {
        uint256 batch;
        uint16 index;
        uint8 client;
        bool funded;
        bool voided;
        uint256 debit;
        uint256 refund;
        bytes32 root;
        bytes32 hash;
        uint256 firstJob;
        uint32 jobCount;
        uint256[3] amounts;
        uint256[3] rewards;
        address demander;
        uint64 dueAt;
    }

    /// @dev A posted batch; `finalizations` counts successful `finalizeBatch` calls.
    struct BatchRec {
        uint256 id;
        uint64 postedAt;
        uint256 firstEntry;
        uint16 entries;
        uint256 finalizations;
    }

    JobSpec[] internal _jobs;
    EntryRec[] internal _entryRecs;
    BatchRec[] internal _batchRecs;
    /// @dev The entries (in posting order) that hold a job, by job hash.
    mapping(bytes32 jobHash => uint256[]) internal _occurrences;
    /// @dev Sound jobs each client has had posted, as candidates for a replay.
    mapping(uint8 client => uint256[]) internal _postedSound;
    uint256 internal _nonce;

    mapping(address client => uint256) public deposited;
    mapping(address client => uint256) public withdrawn;
    /// @dev What each node received from `finalizeBatch` calls.
    mapping(address node => uint256) public paidOut;

    // Ghost flags: each is a call whose outcome broke a rule.
    bool public postRejected;
    bool public wrongFunding;
    bool public wrongDebit;
    bool public wrongRefund;
    bool public wrongSlash;
    bool public wrongPay;
    bool public finalizedTwice;
    bool public finalizeMisjudged;
    bool public soundLeafProven;
    bool public badLeafNotProven;
    bool public replayMisjudged;
    bool public demandMisjudged;
    bool public showMisjudged;
    bool public forfeitMisjudged;
    bool public wrongBond;

    // Counters, to see the paths are reached.
    uint256 public posts;
    uint256 public unfundedEntries;
    uint256 public badLeavesPosted;
    uint256 public replaysPosted;
    uint256 public badLeafProofs;
    uint256 public replayProofs;
    uint256 public shows;
    uint256 public forfeits;
    uint256 public finalizations;
    uint256 public withdrawals;

    constructor(
        ShareToken token_,
        NodeRegistry registry_,
        JobMarket market_,
        BatchSettlement batches_,
        uint256[] memory clientKeys,
        address[3] memory nodes_,
        address[] memory watchers_,
        address sponsor_,
        address[] memory bystanders_
    ) {
        token = token_;
        registry = registry_;
        market = market_;
        batches = batches_;
        _window = market_.params().challengeWindow;
        _rewardPerToken = market_.params().rewardPerToken;
        _bond = batches_.params().demandBond;
        uint256 n = clientKeys.length;
        require(n >= 1 && n <= 3, "one to three clients");
        // Sort the clients by address (insertion sort, three at most).
        for (uint256 a = 0; a < n; ++a) {
            clients.push(vm.addr(clientKeys[a]));
            _keys.push(clientKeys[a]);
            for (uint256 b = a; b > 0 && clients[b] < clients[b - 1]; --b) {
                (clients[b], clients[b - 1]) = (clients[b - 1], clients[b]);
                (_keys[b], _keys[b - 1]) = (_keys[b - 1], _keys[b]);
            }
        }
        _nodes = nodes_;
        poster = nodes_[2];
        _watchers = watchers_;
        sponsor = sponsor_;
        _bystanders = bystanders_;
    }

    // ------------------------------------------------------------------ escrow

    function deposit(uint256 who, uint256 amount) external {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, _min(token.balanceOf(c), 3e16));
        vm.prank(c);
        market.deposit(amount);
        deposited[c] += amount;
    }

    function requestWithdrawal(uint256 who, uint256 amount) external {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, market.escrowOf(c));
        vm.prank(c);
        market.requestWithdrawal(amount);
    }

    /// @dev Now and then waits for the withdrawal to come due first.
    function withdraw(uint256 who, bool wait) external {
        address c = clients[who % clients.length];
        (, uint64 readyAt) = market.pendingWithdrawal(c);
        if (wait && readyAt > block.timestamp) _warpTo(readyAt);
        uint256 before = token.balanceOf(c);
        vm.prank(c);
        try market.withdraw() {
            withdrawn[c] += token.balanceOf(c) - before;
            ++withdrawals;
        } catch {}
    }

    function fundRewards(uint256 amount) external {
        amount = bound(amount, 0, 1e17);
        vm.prank(sponsor);
        market.fundRewards(amount);
    }

    // -------------------------------------------------------------------- time

    /// @dev Mostly minutes, so that batches live through their windows; now and then hours.
    function warp(uint256 secs) external {
        uint256 step = secs % 4 == 0 ? bound(secs >> 2, 1, 6 hours) : bound(secs >> 2, 1, 20 minutes);
        _warpTo(block.timestamp + step);
    }

    // ----------------------------------------------------------------- posting

    /// @dev A batch for the clients in `clientMask` (at least one), each with one to four
    /// jobs. One entry in five holds a bad leaf (forged signature, tokens or a price over
    /// the cap, or expired); one in four replays a sound job already posted for its client.
    function postBatch(uint256 clientMask, uint256 seed) external {
        if (!registry.isActive(poster)) return;
        uint256 mask = 1 + clientMask % ((1 << clients.length) - 1);
        uint256 n = 0;
        for (uint256 c = 0; c < clients.length; ++c) {
            if (mask & (1 << c) != 0) ++n;
        }
        IBatchSettlement.Entry[] memory entries = new IBatchSettlement.Entry[](n);
        JobSpec[][] memory specs = new JobSpec[][](n);
        uint256[] memory escrows = new uint256[](n);
        uint256 e = 0;
        for (uint256 c = 0; c < clients.length; ++c) {
            if (mask & (1 << c) == 0) continue;
            specs[e] = _newEntryJobs(uint8(c), uint256(keccak256(abi.encode(seed, c))));
            entries[e] = _entryOf(uint8(c), specs[e]);
            escrows[e] = market.escrowOf(clients[c]);
            ++e;
        }
        uint64 postedAt = uint64(block.timestamp);
        vm.prank(poster);
        try batches.postBatch(entries) returns (uint256 id) {
            _record(id, postedAt, entries, specs, escrows);
        } catch {
            postRejected = true;
        }
    }

    function _newEntryJobs(uint8 c, uint256 r) internal returns (JobSpec[] memory specs) {
        uint256 m = 1 + r % 4;
        specs = new JobSpec[](m);
        uint256 badAt = (r >> 8) % 5 == 0 ? (r >> 16) % m : type(uint256).max;
        uint256 replayAt = (r >> 24) % 4 == 0 ? (badAt == m - 1 ? 0 : m - 1) : type(uint256).max;
        if (replayAt == badAt) replayAt = type(uint256).max;
        for (uint256 k = 0; k < m; ++k) {
            uint256 rk = uint256(keccak256(abi.encode(r, k)));
            if (k == replayAt && _replayCandidate(c, rk, specs[k])) continue;
            specs[k] = _freshSpec(c, rk, k == badAt ? uint8(1 + (rk >> 200) % 4) : SOUND);
        }
        // Leaves in increasing job hash order (as `showEntry` wants them).
        for (uint256 a = 1; a < m; ++a) {
            for (uint256 b = a; b > 0 && specs[b].jobHash < specs[b - 1].jobHash; --b) {
                (specs[b], specs[b - 1]) = (specs[b - 1], specs[b]);
            }
        }
        for (uint256 k = 0; k < m; ++k) {
            specs[k].index = uint32(k);
            specs[k].leaf = _leafOf(_batchedJob(specs[k]));
        }
    }

    function _freshSpec(uint8 c, uint256 r, uint8 bad) internal returns (JobSpec memory s) {
        s.client = c;
        s.bad = bad;
        s.nonce = ++_nonce;
        s.served = uint32(bound(r, 1, MAX_TOKENS));
        s.deadline = uint64(block.timestamp + 1 days);
        for (uint256 h = 0; h < 3; ++h) {
            s.prices[h] = bound(r >> (64 + 32 * h), 1, CAP);
        }
        if (bad == OVER_TOKENS) s.served = MAX_TOKENS + uint32(bound(r >> 48, 1, 8));
        if (bad == OVER_PRICE) s.prices[(r >> 56) % 3] = CAP + bound(r >> 180, 1, CAP);
        if (bad == EXPIRED) s.deadline = uint64(block.timestamp - bound(r >> 48, 1, 1 days));
        s.jobHash = market.hashJob(_jobOf(s));
        s.cost = _cost(s);
    }

    /// @dev Copies a sound job of `c` that sits in a live entry and has not expired.
    function _replayCandidate(uint8 c, uint256 r, JobSpec memory out) internal view returns (bool) {
        uint256[] storage posted = _postedSound[c];
        uint256 n = posted.length;
        for (uint256 t = 0; t < n && t < 8; ++t) {
            JobSpec storage s = _jobs[posted[(r + t) % n]];
            if (!_live(_entryRecs[s.entry]) || s.deadline < block.timestamp) continue;
            out.client = c;
            out.bad = SOUND;
            out.replay = true;
            out.served = s.served;
            out.deadline = s.deadline;
            out.nonce = s.nonce;
            out.cost = s.cost;
            out.jobHash = s.jobHash;
            out.prices = s.prices;
            return true;
        }
        return false;
    }

    function _entryOf(uint8 c, JobSpec[] memory specs) internal view returns (IBatchSettlement.Entry memory e) {
        bytes32[] memory leaves = new bytes32[](specs.length);
        e.client = clients[c];
        e.jobs = uint32(specs.length);
        e.credits = new IBatchSettlement.Credit[](3);
        for (uint256 i = 0; i < 3; ++i) {
            e.credits[i].node = _nodes[i];
        }
        for (uint256 k = 0; k < specs.length; ++k) {
            leaves[k] = specs[k].leaf;
            for (uint256 i = 0; i < 3; ++i) {
                e.credits[i].amount += uint256(specs[k].served) * 10 * specs[k].prices[i];
                e.credits[i].reward += _rewardPerToken * specs[k].served * 10 / LAYERS;
            }
        }
        e.jobsRoot = MerkleTree.root(leaves);
    }

    function _record(
        uint256 id,
        uint64 postedAt,
        IBatchSettlement.Entry[] memory entries,
        JobSpec[][] memory specs,
        uint256[] memory escrows
    ) internal {
        ++posts;
        IBatchSettlement.Batch memory b = batches.getBatch(id);
        _batchRecs.push(BatchRec(id, postedAt, _entryRecs.length, uint16(entries.length), 0));
        for (uint256 e = 0; e < entries.length; ++e) {
            uint256 debit = 0;
            for (uint256 i = 0; i < 3; ++i) {
                debit += entries[e].credits[i].amount;
            }
            bool funded = b.unfunded & (1 << e) == 0;
            if (funded != (escrows[e] >= debit)) wrongFunding = true;
            uint256 expected = funded ? escrows[e] - debit : escrows[e];
            if (market.escrowOf(entries[e].client) != expected) wrongDebit = true;
            if (!funded) ++unfundedEntries;

            uint256 entryIndex = _entryRecs.length;
            EntryRec storage rec = _entryRecs.push();
            rec.batch = _batchRecs.length - 1;
            rec.index = uint16(e);
            rec.client = specs[e][0].client;
            rec.funded = funded;
            rec.debit = debit;
            rec.root = entries[e].jobsRoot;
            rec.hash = keccak256(abi.encode(entries[e]));
            rec.firstJob = _jobs.length;
            rec.jobCount = uint32(specs[e].length);
            for (uint256 i = 0; i < 3; ++i) {
                rec.amounts[i] = entries[e].credits[i].amount;
                rec.rewards[i] = entries[e].credits[i].reward;
            }
            for (uint256 k = 0; k < specs[e].length; ++k) {
                JobSpec memory s = specs[e][k];
                s.entry = entryIndex;
                _occurrences[s.jobHash].push(entryIndex);
                if (s.bad != SOUND) ++badLeavesPosted;
                if (s.replay) ++replaysPosted;
                if (s.bad == SOUND && !s.replay && funded) _postedSound[s.client].push(_jobs.length);
                _jobs.push(s);
            }
        }
    }

    // ---------------------------------------------------------------- finalize

    /// @dev On any batch, finalized or not; now and then waits out its window first.
    function finalize(uint256 which, bool waitOut) external {
        if (_batchRecs.length == 0) return;
        uint256 bi = which % _batchRecs.length;
        BatchRec storage br = _batchRecs[bi];
        uint256 endsAt = uint256(br.postedAt) + _window;
        if (waitOut && block.timestamp < endsAt) _warpTo(endsAt);
        bool expected = br.finalizations == 0 && block.timestamp >= endsAt && _openDemands(bi) == 0;

        uint256[3] memory amounts;
        uint256[3] memory rewards;
        for (uint256 e = br.firstEntry; e < br.firstEntry + br.entries; ++e) {
            EntryRec storage rec = _entryRecs[e];
            if (!_live(rec)) continue;
            for (uint256 i = 0; i < 3; ++i) {
                amounts[i] += rec.amounts[i];
                rewards[i] += rec.rewards[i];
            }
        }
        uint256[3] memory before;
        for (uint256 i = 0; i < 3; ++i) {
            before[i] = token.balanceOf(_nodes[i]);
        }
        uint256 pool = market.rewardPool();
        IBatchSettlement.Payout memory payout = _payoutOf(bi);
        uint256 id = br.id;
        vm.prank(_bystanders[which % _bystanders.length]);
        try batches.finalizeBatch(id, payout) {
            if (!expected) finalizeMisjudged = true;
            if (++br.finalizations > 1) finalizedTwice = true;
            ++finalizations;
            bool poolCovers = pool >= rewards[0] + rewards[1] + rewards[2];
            for (uint256 i = 0; i < 3; ++i) {
                uint256 got = token.balanceOf(_nodes[i]) - before[i];
                paidOut[_nodes[i]] += got;
                if (got < amounts[i] || got > amounts[i] + rewards[i]) wrongPay = true;
                if (poolCovers && got != amounts[i] + rewards[i]) wrongPay = true;
            }
        } catch {
            if (expected) finalizeMisjudged = true;
        }
    }

    // ------------------------------------------------------------------ proofs

    /// @dev Proves a leaf of any entry: its bad leaf if it has one and `pick` is even, else
    /// a random leaf. A bad leaf of a live entry must be proven; a sound leaf never.
    function proveBadLeaf(uint256 which, uint256 pick) external {
        if (_entryRecs.length == 0) return;
        uint256 e = which % _entryRecs.length;
        EntryRec storage rec = _entryRecs[e];
        uint256 j = rec.firstJob + (pick >> 1) % rec.jobCount;
        if (pick % 2 == 0) {
            for (uint256 k = rec.firstJob; k < rec.firstJob + rec.jobCount; ++k) {
                if (_jobs[k].bad != SOUND) j = k;
            }
        }
        bool bad = _jobs[j].bad != SOUND;
        bool ok = _proveLeaf(e, j, _watchers[pick % _watchers.length]);
        if (ok && !bad) soundLeafProven = true;
        if (!ok && bad && _live(rec) && _inWindow(rec)) badLeafNotProven = true;
    }

    /// @dev Proves a replay in an entry that holds one, naming its earlier live copy first;
    /// now and then names the same leaf twice, which proves nothing.
    function proveReplay(uint256 which, uint256 mode) external {
        uint256 n = _entryRecs.length;
        for (uint256 t = 0; t < n; ++t) {
            if (_tryReplay((which + t) % n, mode)) return;
        }
    }

    /// @dev Proves the first replay of entry `e` if it holds one; false if none.
    function _tryReplay(uint256 e, uint256 mode) internal returns (bool) {
        EntryRec storage rec = _entryRecs[e];
        address prover = _watchers[mode % _watchers.length];
        for (uint256 j = rec.firstJob; j < rec.firstJob + rec.jobCount; ++j) {
            if (!_jobs[j].replay) continue;
            (bool found, uint256 firstEntry, uint256 firstJob) = _earlierLive(e, _jobs[j].jobHash);
            if (!found) continue;
            if (mode % 5 == 0) {
                if (_proveReplay(e, j, e, j, prover)) replayMisjudged = true;
            } else {
                bool expected = _live(rec) && _inWindow(rec);
                if (_proveReplay(firstEntry, firstJob, e, j, prover) != expected) replayMisjudged = true;
            }
            return true;
        }
        return false;
    }

    // ----------------------------------------------------------------- demands

    function demand(uint256 which, uint256 who) external {
        if (_entryRecs.length == 0) return;
        uint256 e = which % _entryRecs.length;
        EntryRec storage rec = _entryRecs[e];
        BatchRec storage br = _batchRecs[rec.batch];
        bool expected = _live(rec) && _inWindow(rec) && rec.demander == address(0);
        address demander = _watchers[who % (_watchers.length - 1)];
        uint256 id = br.id;
        uint16 index = rec.index;
        uint256 held = token.balanceOf(address(batches));
        vm.prank(demander);
        try batches.demandEntry(id, index) {
            if (!expected) demandMisjudged = true;
            if (token.balanceOf(address(batches)) != held + _bond) wrongBond = true;
            rec.demander = demander;
            rec.dueAt = uint64(block.timestamp) + batches.params().responseWindow;
        } catch {
            if (expected) demandMisjudged = true;
        }
    }

    /// @dev The poster shows a demanded entry (the first from `which` on): it must succeed
    /// exactly when every leaf is sound and the answer is on time.
    function show(uint256 which) external {
        (bool found, uint256 e) = _demanded(which);
        if (!found) return;
        EntryRec storage rec = _entryRecs[e];
        bool expected = block.timestamp <= rec.dueAt && !_hasBadLeaf(e);
        IBatchSettlement.EntryRef memory ref = _ref(e);
        IBatchSettlement.BatchedJob[] memory shown = new IBatchSettlement.BatchedJob[](rec.jobCount);
        for (uint256 k = 0; k < rec.jobCount; ++k) {
            shown[k] = _batchedJob(_jobs[rec.firstJob + k]);
        }
        uint256 before = token.balanceOf(poster);
        vm.prank(poster);
        try batches.showEntry(ref, shown) {
            if (!expected) showMisjudged = true;
            if (token.balanceOf(poster) != before + _bond) wrongBond = true;
            rec.demander = address(0);
            rec.dueAt = 0;
            ++shows;
        } catch {
            if (expected) showMisjudged = true;
        }
    }

    /// @dev Forfeits a demanded entry, waiting out the response first; anyone may call.
    function forfeit(uint256 which, uint256 who) external {
        (bool found, uint256 e) = _demanded(which);
        if (!found) return;
        EntryRec storage rec = _entryRecs[e];
        if (block.timestamp <= rec.dueAt) _warpTo(uint256(rec.dueAt) + 1);
        if (rec.demander == address(0)) return; // the watcher proved it meanwhile
        address demander = rec.demander;
        bool expected = block.timestamp > rec.dueAt;
        IBatchSettlement.EntryRef memory ref = _ref(e);
        uint256 before = token.balanceOf(demander);
        (uint256 escrow, uint256 stake) = _beforeVoid(rec);
        vm.prank(_bystanders[who % _bystanders.length]);
        try batches.forfeitEntry(ref) {
            if (!expected) forfeitMisjudged = true;
            uint256 bounty = _afterVoid(e, escrow, stake);
            if (token.balanceOf(demander) != before + _bond + bounty) wrongBond = true;
            ++forfeits;
        } catch {
            if (expected) forfeitMisjudged = true;
        }
    }

    // ----------------------------------------------------------------- watcher

    /// @dev Moves time to `t`; first, the watcher proves every live entry, of every batch
    /// whose window closes by then, that holds a bad leaf or a replay of a live job.
    function _warpTo(uint256 t) internal {
        uint256 nb = _batchRecs.length;
        for (uint256 bi = 0; bi < nb; ++bi) {
            BatchRec storage br = _batchRecs[bi];
            uint256 endsAt = uint256(br.postedAt) + _window;
            if (br.finalizations != 0 || endsAt <= block.timestamp || endsAt > t) continue;
            for (uint256 e = br.firstEntry; e < br.firstEntry + br.entries; ++e) {
                _watch(e);
            }
        }
        vm.warp(t);
    }

    function _watch(uint256 e) internal {
        EntryRec storage rec = _entryRecs[e];
        if (!_live(rec)) return;
        address watcher = _watchers[_watchers.length - 1];
        for (uint256 j = rec.firstJob; j < rec.firstJob + rec.jobCount; ++j) {
            if (_jobs[j].bad == SOUND) continue;
            if (!_proveLeaf(e, j, watcher)) badLeafNotProven = true;
            return;
        }
        for (uint256 j = rec.firstJob; j < rec.firstJob + rec.jobCount; ++j) {
            (bool found, uint256 firstEntry, uint256 firstJob) = _earlierLive(e, _jobs[j].jobHash);
            if (!found) continue;
            if (!_proveReplay(firstEntry, firstJob, e, j, watcher)) replayMisjudged = true;
            return;
        }
    }

    // -------------------------------------------------------------- the proofs

    function _proveLeaf(uint256 e, uint256 j, address prover) internal returns (bool ok) {
        EntryRec storage rec = _entryRecs[e];
        IBatchSettlement.EntryRef memory ref = _ref(e);
        IBatchSettlement.BatchedJob memory bj = _batchedJob(_jobs[j]);
        bytes32[] memory proof = MerkleTree.proof(_leaves(e), j - rec.firstJob);
        (uint256 escrow, uint256 stake) = _beforeVoid(rec);
        vm.prank(prover);
        try batches.proveBadLeaf(ref, bj, proof) {
            _afterVoid(e, escrow, stake);
            ++badLeafProofs;
            return true;
        } catch {
            return false;
        }
    }

    function _proveReplay(uint256 e1, uint256 j1, uint256 e2, uint256 j2, address prover) internal returns (bool) {
        IBatchSettlement.EntryRef memory firstRef = _ref(e1);
        IBatchSettlement.Leaf memory first = _leafStruct(_jobs[j1]);
        bytes32[] memory firstProof = MerkleTree.proof(_leaves(e1), j1 - _entryRecs[e1].firstJob);
        IBatchSettlement.EntryRef memory secondRef = _ref(e2);
        IBatchSettlement.Leaf memory second = _leafStruct(_jobs[j2]);
        bytes32[] memory secondProof = MerkleTree.proof(_leaves(e2), j2 - _entryRecs[e2].firstJob);
        (uint256 escrow, uint256 stake) = _beforeVoid(_entryRecs[e2]);
        vm.prank(prover);
        try batches.proveReplay(firstRef, first, firstProof, secondRef, second, secondProof) {
            _afterVoid(e2, escrow, stake);
            ++replayProofs;
            return true;
        } catch {
            return false;
        }
    }

    function _beforeVoid(EntryRec storage rec) internal view returns (uint256 escrow, uint256 stake) {
        escrow = market.escrowOf(clients[rec.client]);
        stake = registry.getNode(poster).stake;
    }

    /// @dev Books a void: the client must have exactly the entry's debit back, the poster
    /// must have lost the slash. Returns the bounty the slash paid.
    function _afterVoid(uint256 e, uint256 escrowBefore, uint256 stakeBefore) internal returns (uint256 bounty) {
        EntryRec storage rec = _entryRecs[e];
        if (!rec.funded || rec.voided) wrongRefund = true;
        rec.voided = true;
        rec.refund = market.escrowOf(clients[rec.client]) - escrowBefore;
        if (rec.refund != rec.debit) wrongRefund = true;
        IJobMarket.MarketParams memory mp = market.params();
        uint256 slashed = _min(mp.slashAmount, stakeBefore);
        if (registry.getNode(poster).stake != stakeBefore - slashed) wrongSlash = true;
        bounty = slashed * mp.bountyBps / 10_000;
        rec.demander = address(0);
        rec.dueAt = 0;
    }

    // ------------------------------------------------------------- rebuilding

    function _jobOf(JobSpec memory s) internal view returns (IJobMarket.Job memory job) {
        job.modelId = MODEL;
        job.route = new address[](3);
        job.spanStarts = new uint16[](3);
        job.spanEnds = new uint16[](3);
        for (uint256 i = 0; i < 3; ++i) {
            job.route[i] = _nodes[i];
            job.spanStarts[i] = uint16(10 * i);
            job.spanEnds[i] = uint16(10 * i + 10);
        }
        job.maxTokens = MAX_TOKENS;
        job.maxPricePerToken = CAP;
        job.nonce = s.nonce;
        job.deadline = s.deadline;
        job.client = clients[s.client];
    }

    function _batchedJob(JobSpec memory s) internal view returns (IBatchSettlement.BatchedJob memory bj) {
        bj.job = _jobOf(s);
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(s.bad == FORGED ? FORGER_KEY : _keys[s.client], s.jobHash);
        bj.signature = abi.encodePacked(r, sig, v);
        bj.index = s.index;
        bj.tokensServed = s.served;
        bj.commitment = COMMITMENT;
        bj.prices = new uint256[](3);
        for (uint256 i = 0; i < 3; ++i) {
            bj.prices[i] = s.prices[i];
        }
    }

    function _leafStruct(JobSpec memory s) internal view returns (IBatchSettlement.Leaf memory) {
        IBatchSettlement.BatchedJob memory bj = _batchedJob(s);
        return IBatchSettlement.Leaf(
            bj.index, s.jobHash, keccak256(bj.signature), bj.tokensServed, bj.commitment, bj.prices
        );
    }

    /// @dev The leaf hash computed here, not by the contract: double keccak of the fields.
    function _leafOf(IBatchSettlement.BatchedJob memory bj) internal view returns (bytes32) {
        bytes32 jobHash = market.hashJob(bj.job);
        return keccak256(
            bytes.concat(
                keccak256(
                    abi.encode(bj.index, jobHash, keccak256(bj.signature), bj.tokensServed, bj.commitment, bj.prices)
                )
            )
        );
    }

    function _cost(JobSpec memory s) internal pure returns (uint256 cost) {
        for (uint256 i = 0; i < 3; ++i) {
            cost += uint256(s.served) * 10 * s.prices[i];
        }
    }

    function _entryStruct(uint256 e) internal view returns (IBatchSettlement.Entry memory entry) {
        EntryRec storage rec = _entryRecs[e];
        entry.client = clients[rec.client];
        entry.jobsRoot = rec.root;
        entry.jobs = rec.jobCount;
        entry.credits = new IBatchSettlement.Credit[](3);
        for (uint256 i = 0; i < 3; ++i) {
            entry.credits[i] = IBatchSettlement.Credit(_nodes[i], rec.amounts[i], rec.rewards[i]);
        }
    }

    /// @dev The payout as posted: what the funded entries credit each node (all credit the
    /// three nodes in order), whatever was voided since.
    function _payoutOf(uint256 bi) internal view returns (IBatchSettlement.Payout memory p) {
        BatchRec storage br = _batchRecs[bi];
        bool any = false;
        uint256[3] memory amounts;
        uint256[3] memory rewards;
        for (uint256 e = br.firstEntry; e < br.firstEntry + br.entries; ++e) {
            EntryRec storage rec = _entryRecs[e];
            if (!rec.funded) continue;
            any = true;
            for (uint256 i = 0; i < 3; ++i) {
                amounts[i] += rec.amounts[i];
                rewards[i] += rec.rewards[i];
            }
        }
        uint256 n = any ? 3 : 0;
        p = IBatchSettlement.Payout(new address[](n), new uint256[](n), new uint256[](n));
        for (uint256 i = 0; i < n; ++i) {
            (p.nodes[i], p.amounts[i], p.rewards[i]) = (_nodes[i], amounts[i], rewards[i]);
        }
    }

    function _ref(uint256 e) internal view returns (IBatchSettlement.EntryRef memory ref) {
        EntryRec storage rec = _entryRecs[e];
        BatchRec storage br = _batchRecs[rec.batch];
        ref.batchId = br.id;
        ref.index = rec.index;
        ref.entryHashes = new bytes32[](br.entries);
        for (uint256 k = 0; k < br.entries; ++k) {
            ref.entryHashes[k] = _entryRecs[br.firstEntry + k].hash;
        }
        ref.entry = _entryStruct(e);
    }

    function _leaves(uint256 e) internal view returns (bytes32[] memory leaves) {
        EntryRec storage rec = _entryRecs[e];
        leaves = new bytes32[](rec.jobCount);
        for (uint256 k = 0; k < rec.jobCount; ++k) {
            leaves[k] = _jobs[rec.firstJob + k].leaf;
        }
    }

    // ---------------------------------------------------------------- queries

    function _live(EntryRec storage rec) internal view returns (bool) {
        return rec.funded && !rec.voided;
    }

    /// @dev The entry's batch is pending and inside its challenge window.
    function _inWindow(EntryRec storage rec) internal view returns (bool) {
        BatchRec storage br = _batchRecs[rec.batch];
        return br.finalizations == 0 && block.timestamp < uint256(br.postedAt) + _window;
    }

    function _hasBadLeaf(uint256 e) internal view returns (bool) {
        EntryRec storage rec = _entryRecs[e];
        for (uint256 j = rec.firstJob; j < rec.firstJob + rec.jobCount; ++j) {
            if (_jobs[j].bad != SOUND) return true;
        }
        return false;
    }

    /// @dev The first live entry posted before `e` that holds `jobHash`, and the leaf there.
    function _earlierLive(uint256 e, bytes32 jobHash) internal view returns (bool, uint256, uint256) {
        uint256[] storage occ = _occurrences[jobHash];
        for (uint256 k = 0; k < occ.length && occ[k] < e; ++k) {
            EntryRec storage other = _entryRecs[occ[k]];
            if (!_live(other)) continue;
            for (uint256 j = other.firstJob; j < other.firstJob + other.jobCount; ++j) {
                if (_jobs[j].jobHash == jobHash) return (true, occ[k], j);
            }
        }
        return (false, 0, 0);
    }

    function _openDemands(uint256 bi) internal view returns (uint256 open) {
        BatchRec storage br = _batchRecs[bi];
        for (uint256 e = br.firstEntry; e < br.firstEntry + br.entries; ++e) {
            if (_entryRecs[e].demander != address(0)) ++open;
        }
    }

    function _demanded(uint256 which) internal view returns (bool, uint256) {
        uint256 n = _entryRecs.length;
        for (uint256 t = 0; t < n; ++t) {
            uint256 e = (which + t) % n;
            if (_entryRecs[e].demander != address(0)) return (true, e);
        }
        return (false, 0);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    // ------------------------------------------------- views for the invariants

    function actors() external view returns (address[] memory all) {
        all = new address[](clients.length + 3 + _watchers.length + 1 + _bystanders.length);
        uint256 k = 0;
        for (uint256 i = 0; i < clients.length; ++i) all[k++] = clients[i];
        for (uint256 i = 0; i < 3; ++i) all[k++] = _nodes[i];
        for (uint256 i = 0; i < _watchers.length; ++i) all[k++] = _watchers[i];
        all[k++] = sponsor;
        for (uint256 i = 0; i < _bystanders.length; ++i) all[k++] = _bystanders[i];
    }

    function clientCount() external view returns (uint256) {
        return clients.length;
    }

    function batchCount() external view returns (uint256) {
        return _batchRecs.length;
    }

    function nodeAt(uint256 i) external view returns (address) {
        return _nodes[i];
    }

    /// @dev What batch `bi` holds by the handler's books: the debits of its live entries, its
    /// unfunded, voided and demanded bitmaps, and its open demands.
    function batchBooks(uint256 bi)
        external
        view
        returns (
            uint256 id,
            uint256 owed,
            uint256 unfunded,
            uint256 voided,
            uint256 demanded,
            uint256 openDemands,
            uint256 finalizeCount
        )
    {
        BatchRec storage br = _batchRecs[bi];
        id = br.id;
        finalizeCount = br.finalizations;
        for (uint256 k = 0; k < br.entries; ++k) {
            EntryRec storage rec = _entryRecs[br.firstEntry + k];
            if (!rec.funded) unfunded |= 1 << k;
            if (rec.voided) voided |= 1 << k;
            if (rec.demander != address(0)) {
                demanded |= 1 << k;
                ++openDemands;
            }
            if (_live(rec)) owed += rec.debit;
        }
    }

    /// @dev Client `c` by the handler's books: the debits of its live entries; what its
    /// sound jobs in live entries cost, each job counted once (in its first live entry);
    /// what live entries still inside their window charge beyond that; and whether a live
    /// entry whose window has closed charges beyond it.
    function clientBooks(uint256 c)
        external
        view
        returns (uint256 liveDebit, uint256 soundCost, uint256 openExcess, bool closedExcess)
    {
        uint256 n = _entryRecs.length;
        for (uint256 e = 0; e < n; ++e) {
            EntryRec storage rec = _entryRecs[e];
            if (rec.client != c || !_live(rec)) continue;
            uint256 sound = 0;
            for (uint256 j = rec.firstJob; j < rec.firstJob + rec.jobCount; ++j) {
                JobSpec storage s = _jobs[j];
                if (s.bad != SOUND) continue;
                (bool earlier,,) = _earlierLive(e, s.jobHash);
                if (!earlier) sound += s.cost;
            }
            liveDebit += rec.debit;
            soundCost += sound;
            if (rec.debit > sound) {
                if (_inWindow(rec)) openExcess += rec.debit - sound;
                else closedExcess = true;
            }
        }
    }

    /// @dev What node `i` is credited (pay, reward) by live entries of finalized batches.
    function nodeCredits(uint256 i) external view returns (uint256 amount, uint256 reward) {
        uint256 n = _entryRecs.length;
        for (uint256 e = 0; e < n; ++e) {
            EntryRec storage rec = _entryRecs[e];
            if (!_live(rec) || _batchRecs[rec.batch].finalizations == 0) continue;
            amount += rec.amounts[i];
            reward += rec.rewards[i];
        }
    }

    /// @dev Every voided entry's client got exactly its debit back.
    function voidsRefundedExactly() external view returns (bool) {
        uint256 n = _entryRecs.length;
        for (uint256 e = 0; e < n; ++e) {
            EntryRec storage rec = _entryRecs[e];
            if (rec.voided && rec.refund != rec.debit) return false;
        }
        return true;
    }

    /// @dev The bonds of the demands still open, by the handler's books.
    function openBonds() external view returns (uint256 bonds) {
        uint256 n = _entryRecs.length;
        for (uint256 e = 0; e < n; ++e) {
            if (_entryRecs[e].demander != address(0)) bonds += _bond;
        }
    }
}
