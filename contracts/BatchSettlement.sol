// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title BatchSettlement
/// @notice Settles many jobs per transaction. A batch stores one hash; posting debits one
/// escrow per client and finalizing pays one transfer per node, whatever the number of jobs.
/// Every rule a job must keep is checked only when someone shows it is broken.
/// @dev Tokens never sit here except demand bonds: the market holds what batches owe
/// (`totalBatched`) and pays, refunds and slashes on this contract's word.
contract BatchSettlement is IBatchSettlement, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Entries per batch (one bit each in the batch's bitmaps).
    uint256 public constant MAX_ENTRIES = 256;
    /// @notice Jobs per entry, so that showing a whole entry fits in a block.
    uint32 public constant MAX_ENTRY_JOBS = 64;
    /// @notice Nodes credited per entry.
    uint256 public constant MAX_CREDITS = 64;

    IJobMarket private immutable _market;
    INodeRegistry private immutable _registry;
    IERC20 private immutable _token;
    uint64 private immutable _window;
    uint256 private immutable _rewardPerToken;
    BatchParams private _params;

    uint256 private _count;
    mapping(uint256 batchId => Batch) private _batches;
    mapping(bytes32 entryKey => Demand) private _demands;
    /// @dev What lifted jobs took out of an entry's credit to a node: pay and reward.
    // slither-disable-next-line uninitialized-state -- written through storage references in _takeShares
    mapping(bytes32 creditKey => uint256[2]) private _liftedShare;
    /// @dev The leaf each lifted job came from, so a lift is not mistaken for a replay.
    mapping(bytes32 jobHash => bytes32 leafKey) private _liftedFrom;
    /// @dev What voids and lifts took out of a batch's payout to a node: pay and reward.
    // slither-disable-next-line uninitialized-state -- written through storage references in _deduct
    mapping(bytes32 payoutKey => uint256[2]) private _deducted;

    /// @param market_ The market that holds the escrows; it must name this contract.
    /// @param params_ The demand bond, and the time a poster has to show a demanded entry;
    /// a poster cannot leave before a demand made at the window's end is answered, even for
    /// a batch posted as late as a node that asked to leave may be credited (the registry's
    /// `termsLock` after it asked).
    constructor(IJobMarket market_, BatchParams memory params_) {
        IJobMarket.MarketParams memory mp = market_.params();
        INodeRegistry registry_ = INodeRegistry(market_.registry());
        if (
            params_.responseWindow == 0 || params_.demandBond == 0
                || registry_.unbondingDelay()
                    <= uint256(registry_.termsLock()) + mp.challengeWindow + params_.responseWindow
        ) revert InvalidParams();
        _market = market_;
        _registry = registry_;
        _token = market_.token();
        _window = mp.challengeWindow;
        _rewardPerToken = mp.rewardPerToken;
        _params = params_;
    }

    // ------------------------------------------------------------------- posting

    /// @inheritdoc IBatchSettlement
    // slither-disable-next-line reentrancy-benign -- _market is the immutable JobMarket, whose debitBatch makes no external call
    function postBatch(Entry[] calldata entries) external nonReentrant returns (uint256 batchId) {
        uint256 n = entries.length;
        if (n == 0 || n > MAX_ENTRIES) revert BadBatchSize(n);
        if (block.timestamp > _registry.payableUntil(msg.sender)) revert NodeNotActive(msg.sender);
        address[] memory clients = new address[](n);
        uint256[] memory debits = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        address[] memory active = new address[](MAX_CREDITS);
        uint256 known = 0;
        address previous = address(0);
        for (uint256 i = 0; i < n; ++i) {
            Entry calldata e = entries[i];
            uint256 credits = e.credits.length;
            if (
                e.client <= previous || e.jobs == 0 || e.jobs > MAX_ENTRY_JOBS || credits == 0
                    || credits > MAX_CREDITS
            ) revert BadEntry(uint16(i));
            previous = e.client;
            address lastNode = address(0);
            uint256 debit = 0;
            for (uint256 j = 0; j < credits; ++j) {
                address node = e.credits[j].node;
                if (node <= lastNode) revert BadEntry(uint16(i));
                lastNode = node;
                debit += e.credits[j].amount;
                known = _requireActive(node, active, known);
            }
            clients[i] = e.client;
            debits[i] = debit;
            hashes[i] = keccak256(abi.encode(e));
        }
        (uint256 unfunded, uint256 total) = _market.debitBatch(clients, debits);
        batchId = ++_count;
        Batch storage b = _batches[batchId];
        b.poster = msg.sender;
        b.postedAt = uint64(block.timestamp);
        b.status = BatchStatus.Posted;
        b.entries = uint16(n);
        b.entriesHash = keccak256(abi.encodePacked(hashes));
        b.outstanding = SafeCast.toUint128(total);
        if (unfunded != 0) b.unfunded = unfunded;
        Payout memory payout = _payoutOf(entries, unfunded);
        b.payoutHash = keccak256(abi.encode(payout.nodes, payout.amounts, payout.rewards));
        emit BatchPosted(
            batchId, msg.sender, b.entriesHash, uint16(n), total, payout.nodes, payout.amounts, payout.rewards
        );
        for (uint256 i = 0; i < n; ++i) {
            emit EntryPosted(batchId, clients[i], uint16(i), debits[i], unfunded & (1 << i) == 0);
        }
    }

    /// @inheritdoc IBatchSettlement
    function finalizeBatch(uint256 batchId, Payout calldata payout) external nonReentrant {
        Batch storage b = _pending(batchId);
        uint256 endsAt = uint256(b.postedAt) + _window;
        if (block.timestamp < endsAt) revert WindowOpen(batchId, endsAt);
        if (b.openDemands != 0) revert DemandsOpen(batchId, b.openDemands);
        if (keccak256(abi.encode(payout.nodes, payout.amounts, payout.rewards)) != b.payoutHash) {
            revert PayoutMismatch(batchId);
        }
        Payout memory p = payout;
        uint256 paid = 0;
        bool adjusted = b.adjusted;
        for (uint256 k = 0; k < p.nodes.length; ++k) {
            if (adjusted) {
                // Deductions come out of credits the payout summed, so they cannot underflow.
                uint256[2] storage d = _deducted[_payoutKey(batchId, p.nodes[k])];
                p.amounts[k] -= d[0];
                p.rewards[k] -= d[1];
            }
            paid += p.amounts[k];
        }
        // Every debit was either refunded, lifted or is paid here: nothing stays behind.
        if (paid != b.outstanding) revert PayoutMismatch(batchId);
        b.status = BatchStatus.Finalized;
        b.outstanding = 0;
        uint256[] memory given = _market.payBatch(p.nodes, p.amounts, p.rewards);
        uint256 rewarded = 0;
        for (uint256 k = 0; k < p.nodes.length; ++k) {
            rewarded += given[k];
            emit NodePaid(batchId, p.nodes[k], p.amounts[k], given[k]);
        }
        emit BatchFinalized(batchId, paid, rewarded);
    }

    // -------------------------------------------------------------------- proofs

    /// @inheritdoc IBatchSettlement
    function proveBadLeaf(EntryRef calldata ref, BatchedJob calldata job, bytes32[] calldata proof)
        external
        nonReentrant
    {
        Batch storage b = _live(ref);
        bytes32 jobHash = _market.hashJob(job.job);
        _requireInEntry(ref, _leafOf(job, jobHash), proof);
        Fault fault = _leafFault(job, jobHash, ref.entry.client, b.poster, b.postedAt);
        // A lifted leaf's pay already left the credits (its lift checked it fitted).
        bool lifted = _liftedFrom[jobHash] == _leafKey(ref, job.index);
        if (fault == Fault.None && !lifted && !_credited(ref, job)) fault = Fault.NotCredited;
        if (fault == Fault.None) revert LeafSound(jobHash);
        _void(b, ref, fault, msg.sender);
    }

    /// @inheritdoc IBatchSettlement
    function proveReplay(
        EntryRef calldata firstRef,
        Leaf calldata first,
        bytes32[] calldata firstProof,
        EntryRef calldata secondRef,
        Leaf calldata second,
        bytes32[] calldata secondProof
    ) external nonReentrant {
        Batch storage b = _live(secondRef);
        _requireInEntry(secondRef, _leafHash(second), secondProof);
        if (firstRef.batchId == 0) {
            // Paid as a job of its own before this batch was posted (a later one is undone
            // by `proveResubmitted`), and not lifted from this very leaf.
            IJobMarket.JobRecord memory rec = _market.getJob(second.jobHash);
            if (rec.status == IJobMarket.JobStatus.None || rec.submittedAt > b.postedAt) revert NotAReplay();
            if (_liftedFrom[second.jobHash] == _leafKey(secondRef, second.index)) revert NotAReplay();
        } else {
            // The earlier copy stands: the later batch, or the same entry twice.
            bool earlier = firstRef.batchId < secondRef.batchId
                || (firstRef.batchId == secondRef.batchId && firstRef.index == secondRef.index);
            if (!earlier) revert NotAReplay();
            Batch storage a = _batch(firstRef.batchId);
            _requireEntry(a, firstRef);
            uint256 bit = 1 << firstRef.index;
            if ((a.unfunded | a.voided) & bit != 0) revert EntryNotLive(firstRef.batchId, firstRef.index);
            _requireInEntry(firstRef, _leafHash(first), firstProof);
            if (first.jobHash != second.jobHash) revert NotAReplay();
            if (_leafKey(firstRef, first.index) == _leafKey(secondRef, second.index)) revert NotAReplay();
        }
        _void(b, secondRef, Fault.Replayed, msg.sender);
    }

    /// @inheritdoc IBatchSettlement
    function proveResubmitted(EntryRef calldata ref, Leaf calldata leaf, bytes32[] calldata proof)
        external
        nonReentrant
    {
        // The batch may be final: its jobs stay paid, and so stay provable, for good.
        Batch storage b = _batch(ref.batchId);
        _requireEntry(b, ref);
        if ((b.unfunded | b.voided) & (1 << ref.index) != 0) revert EntryNotLive(ref.batchId, ref.index);
        _requireInEntry(ref, _leafHash(leaf), proof);
        IJobMarket.JobRecord memory rec = _market.getJob(leaf.jobHash);
        if (rec.submittedAt <= b.postedAt || _liftedFrom[leaf.jobHash] == _leafKey(ref, leaf.index)) {
            revert NotAReplay();
        }
        // The market checks the record is pending and inside its own window.
        _market.overturnResubmitted(leaf.jobHash, msg.sender);
    }

    /// @inheritdoc IBatchSettlement
    function demandEntry(uint256 batchId, uint16 index) external nonReentrant {
        Batch storage b = _pending(batchId);
        _requireWindow(batchId, b);
        if (index >= b.entries) revert EntryNotLive(batchId, index);
        uint256 bit = 1 << index;
        if ((b.unfunded | b.voided) & bit != 0) revert EntryNotLive(batchId, index);
        if (b.demanded & bit != 0) revert AlreadyDemanded(batchId, index);
        b.demanded |= bit;
        b.openDemands += 1;
        uint64 dueAt = uint64(block.timestamp) + _params.responseWindow;
        _demands[_entryKey(batchId, index)] = Demand(msg.sender, dueAt);
        emit EntryDemanded(batchId, index, msg.sender, dueAt);
        _token.safeTransferFrom(msg.sender, address(this), _params.demandBond);
    }

    /// @inheritdoc IBatchSettlement
    function showEntry(EntryRef calldata ref, BatchedJob[] calldata jobs) external nonReentrant {
        Batch storage b = _pending(ref.batchId);
        _requireEntry(b, ref);
        Demand memory d = _openDemand(b, ref);
        if (block.timestamp > d.dueAt) revert DemandExpired(ref.batchId, ref.index, d.dueAt);
        _checkShown(b, ref, jobs);
        _closeDemand(b, ref);
        emit EntryShown(ref.batchId, ref.index);
        _token.safeTransfer(b.poster, _params.demandBond);
    }

    /// @inheritdoc IBatchSettlement
    function forfeitEntry(EntryRef calldata ref) external nonReentrant {
        Batch storage b = _pending(ref.batchId);
        _requireEntry(b, ref);
        Demand memory d = _openDemand(b, ref);
        if (block.timestamp <= d.dueAt) revert DemandNotDue(ref.batchId, ref.index, d.dueAt);
        _void(b, ref, Fault.Withheld, d.demander);
    }

    /// @inheritdoc IBatchSettlement
    function lift(EntryRef calldata ref, BatchedJob calldata job, bytes32[] calldata proof)
        external
        nonReentrant
        returns (bytes32 jobHash)
    {
        if (msg.sender != _market.court()) revert Unauthorized(msg.sender);
        return _lift(ref, job, proof);
    }

    /// @inheritdoc IBatchSettlement
    function proveOvercharge(
        EntryRef calldata ref,
        BatchedJob calldata job,
        bytes32[] calldata proof,
        bytes calldata receipts
    ) external nonReentrant {
        bytes32 jobHash = _lift(ref, job, proof);
        _market.proveOverchargeFor(jobHash, receipts, msg.sender);
    }

    // --------------------------------------------------------------------- views

    /// @inheritdoc IBatchSettlement
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @inheritdoc IBatchSettlement
    function batchCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc IBatchSettlement
    function demandOf(uint256 batchId, uint16 index) external view returns (Demand memory) {
        return _demands[_entryKey(batchId, index)];
    }

    /// @inheritdoc IBatchSettlement
    function leafHash(BatchedJob calldata job) external view returns (bytes32) {
        return _leafOf(job, _market.hashJob(job.job));
    }

    /// @inheritdoc IBatchSettlement
    function entryHash(Entry calldata entry) external pure returns (bytes32) {
        return keccak256(abi.encode(entry));
    }

    /// @inheritdoc IBatchSettlement
    function leafFault(BatchedJob calldata job, address client, address poster, uint64 postedAt)
        external
        view
        returns (Fault)
    {
        return _leafFault(job, _market.hashJob(job.job), client, poster, postedAt);
    }

    /// @inheritdoc IBatchSettlement
    function params() external view returns (BatchParams memory) {
        return _params;
    }

    // ------------------------------------------------------------------ internal

    /// @dev The payout of a batch's funded entries: per node, in order of first credit.
    // slither-disable-next-line assembly -- trims the memory arrays to the nodes credited
    function _payoutOf(Entry[] calldata entries, uint256 unfunded) private pure returns (Payout memory p) {
        uint256 slots = 0;
        for (uint256 i = 0; i < entries.length; ++i) {
            slots += entries[i].credits.length;
        }
        p = Payout(new address[](slots), new uint256[](slots), new uint256[](slots));
        uint256 count = 0;
        for (uint256 i = 0; i < entries.length; ++i) {
            if (unfunded & (1 << i) != 0) continue;
            Credit[] calldata credits = entries[i].credits;
            for (uint256 j = 0; j < credits.length; ++j) {
                uint256 k = 0;
                while (k < count && p.nodes[k] != credits[j].node) ++k;
                if (k == count) p.nodes[count++] = credits[j].node;
                p.amounts[k] += credits[j].amount;
                p.rewards[k] += credits[j].reward;
            }
        }
        address[] memory nodes = p.nodes;
        uint256[] memory amounts = p.amounts;
        uint256[] memory rewards = p.rewards;
        // Trim the arrays to the nodes credited.
        assembly ("memory-safe") {
            mstore(nodes, count)
            mstore(amounts, count)
            mstore(rewards, count)
        }
    }

    /// @dev Takes pay and reward out of what the batch's payout gives `node`.
    function _deduct(Batch storage b, uint256 batchId, address node, uint256 amount, uint256 reward) private {
        uint256[2] storage d = _deducted[_payoutKey(batchId, node)];
        d[0] += amount;
        d[1] += reward;
        b.adjusted = true;
    }

    // slither-disable-next-line calls-loop -- _registry is the immutable NodeRegistry; the loop is over one job's route
    function _requireActive(address node, address[] memory active, uint256 known) private view returns (uint256) {
        for (uint256 k = 0; k < known; ++k) {
            if (active[k] == node) return known;
        }
        if (block.timestamp > _registry.payableUntil(node)) revert NodeNotActive(node);
        if (known == active.length) return known; // cache full: later checks call again
        active[known] = node;
        return known + 1;
    }

    function _batch(uint256 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.status == BatchStatus.None) revert UnknownBatch(batchId);
    }

    function _pending(uint256 batchId) private view returns (Batch storage b) {
        b = _batch(batchId);
        if (b.status != BatchStatus.Posted) revert BatchNotPending(batchId);
    }

    function _requireWindow(uint256 batchId, Batch storage b) private view {
        uint256 endsAt = uint256(b.postedAt) + _window;
        if (block.timestamp >= endsAt) revert WindowClosed(batchId, endsAt);
    }

    /// @dev The entry is the batch's entry at `ref.index`.
    function _requireEntry(Batch storage b, EntryRef calldata ref) private view {
        if (
            ref.index >= b.entries || ref.entryHashes.length != b.entries
                || keccak256(abi.encodePacked(ref.entryHashes)) != b.entriesHash
                || ref.entryHashes[ref.index] != keccak256(abi.encode(ref.entry))
        ) revert EntriesMismatch(ref.batchId);
    }

    /// @dev A pending batch inside its window, and a funded entry of it not yet voided.
    function _live(EntryRef calldata ref) private view returns (Batch storage b) {
        b = _pending(ref.batchId);
        _requireWindow(ref.batchId, b);
        _requireEntry(b, ref);
        if ((b.unfunded | b.voided) & (1 << ref.index) != 0) revert EntryNotLive(ref.batchId, ref.index);
    }

    function _requireInEntry(EntryRef calldata ref, bytes32 leaf, bytes32[] calldata proof) private pure {
        if (!MerkleProof.verifyCalldata(proof, ref.entry.jobsRoot, leaf)) revert NotInEntry(ref.batchId, ref.index);
    }

    function _openDemand(Batch storage b, EntryRef calldata ref) private view returns (Demand memory d) {
        if (b.demanded & (1 << ref.index) == 0) revert NoDemand(ref.batchId, ref.index);
        d = _demands[_entryKey(ref.batchId, ref.index)];
    }

    function _closeDemand(Batch storage b, EntryRef calldata ref) private returns (address demander) {
        bytes32 key = _entryKey(ref.batchId, ref.index);
        demander = _demands[key].demander;
        delete _demands[key];
        b.demanded &= ~(1 << ref.index);
        b.openDemands -= 1;
    }

    /// @dev A proven bad entry: its client gets back everything it still has in the batch,
    /// the poster is slashed, the prover gets the bounty; a pending demand's bond returns.
    function _void(Batch storage b, EntryRef calldata ref, Fault fault, address prover) private {
        uint256 bit = 1 << ref.index;
        b.voided |= bit;
        address demander = address(0);
        if (b.demanded & bit != 0) demander = _closeDemand(b, ref);
        uint256 refund = 0;
        uint256 credits = ref.entry.credits.length;
        bool lifted = b.lifted & bit != 0;
        for (uint256 j = 0; j < credits; ++j) {
            Credit calldata c = ref.entry.credits[j];
            (uint256 amount, uint256 reward) = _left(ref.batchId, ref.index, c, lifted);
            _deduct(b, ref.batchId, c.node, amount, reward);
            refund += amount;
        }
        b.outstanding -= SafeCast.toUint128(refund);
        uint256 slashed = _market.refundBatched(ref.entry.client, refund, b.poster, prover);
        emit EntryVoided(ref.batchId, ref.index, ref.entry.client, fault, refund, slashed);
        if (demander != address(0)) _token.safeTransfer(demander, _params.demandBond);
    }

    /// @dev Every job of a demanded entry, in leaf order with increasing job hashes, each
    /// sound, rebuilding the entry's root and exactly its credits.
    function _checkShown(Batch storage b, EntryRef calldata ref, BatchedJob[] calldata jobs) private view {
        uint256 count = jobs.length;
        if (count != ref.entry.jobs) revert ShownMismatch(ref.batchId, ref.index);
        uint256 credits = ref.entry.credits.length;
        _Shown memory t = _Shown(new uint256[](credits), new uint256[](credits), new bytes32[](count), 0);
        for (uint256 k = 0; k < count; ++k) {
            _showOne(b, ref, jobs[k], k, t);
        }
        for (uint256 j = 0; j < credits; ++j) {
            Credit calldata c = ref.entry.credits[j];
            if (t.amounts[j] != c.amount || t.rewards[j] != c.reward) revert ShownMismatch(ref.batchId, ref.index);
        }
        if (_root(t.leaves) != ref.entry.jobsRoot) revert ShownMismatch(ref.batchId, ref.index);
    }

    /// @dev What the jobs shown so far add up to.
    // slither-disable-next-line naming-convention -- private structs take a leading underscore, as private functions do
    struct _Shown {
        uint256[] amounts;
        uint256[] rewards;
        bytes32[] leaves;
        bytes32 lastHash;
    }

    // slither-disable-next-line calls-loop -- hashJob is a view of the immutable JobMarket
    function _showOne(Batch storage b, EntryRef calldata ref, BatchedJob calldata job, uint256 k, _Shown memory t)
        private
        view
    {
        bytes32 jobHash = _market.hashJob(job.job);
        if (job.index != k || (k > 0 && jobHash <= t.lastHash)) revert ShownMismatch(ref.batchId, ref.index);
        t.lastHash = jobHash;
        Fault fault = _leafFault(job, jobHash, ref.entry.client, b.poster, b.postedAt);
        if (fault != Fault.None) revert LeafFaulty(jobHash, fault);
        if (!_tally(job, ref.entry.credits, t.amounts, t.rewards)) revert ShownMismatch(ref.batchId, ref.index);
        t.leaves[k] = _leafOf(job, jobHash);
    }

    /// @dev Adds a job's pay and reward per hop to the matching credits; false if a hop has
    /// no credit.
    function _tally(
        BatchedJob calldata job,
        Credit[] calldata credits,
        uint256[] memory amounts,
        uint256[] memory rewards
    ) private view returns (bool) {
        uint256 hops = job.job.route.length;
        uint256 total = _totalLayers(job.job);
        for (uint256 i = 0; i < hops; ++i) {
            (uint256 amount, uint256 reward) = _hopPay(job, i, total);
            uint256 j = 0;
            while (j < credits.length && credits[j].node != job.job.route[i]) ++j;
            if (j == credits.length) return false;
            amounts[j] += amount;
            rewards[j] += reward;
        }
        return true;
    }

    /// @dev The root of an OpenZeppelin-style tree over `leaves` in order: pairs hashed
    /// commutatively, an odd node carried up unchanged.
    function _root(bytes32[] memory leaves) private pure returns (bytes32) {
        uint256 n = leaves.length;
        while (n > 1) {
            uint256 half = 0;
            for (uint256 k = 0; k < n; k += 2) {
                leaves[half++] = k + 1 < n ? Hashes.commutativeKeccak256(leaves[k], leaves[k + 1]) : leaves[k];
            }
            n = half;
        }
        return leaves[0];
    }

    /// @dev A hop's pay (tokens x layers x its price) and its share of the reward, split by
    /// layers as the market's `finalize` splits it.
    function _hopPay(BatchedJob calldata job, uint256 i, uint256 totalLayers)
        private
        view
        returns (uint256 amount, uint256 reward)
    {
        uint256 layers = job.job.spanEnds[i] - job.job.spanStarts[i];
        amount = uint256(job.tokensServed) * layers * job.prices[i];
        reward = _rewardPerToken * job.tokensServed * layers / totalLayers;
    }

    function _totalLayers(IJobMarket.Job calldata job) private pure returns (uint256) {
        return job.spanEnds[job.spanEnds.length - 1];
    }

    /// @dev True if every hop's pay fits in what the entry still credits its node.
    function _credited(EntryRef calldata ref, BatchedJob calldata job) private view returns (bool) {
        Credit[] calldata credits = ref.entry.credits;
        uint256[] memory amounts = new uint256[](credits.length);
        uint256[] memory rewards = new uint256[](credits.length);
        if (!_tally(job, credits, amounts, rewards)) return false;
        bool lifted = _batches[ref.batchId].lifted & (1 << ref.index) != 0;
        for (uint256 j = 0; j < credits.length; ++j) {
            (uint256 amount, uint256 reward) = _left(ref.batchId, ref.index, credits[j], lifted);
            if (amounts[j] > amount || rewards[j] > reward) return false;
        }
        return true;
    }

    /// @dev What an entry still credits a node, after the jobs lifted out of it. A lift
    /// checks its shares fit the credit, so this cannot underflow.
    function _left(uint256 batchId, uint256 index, Credit calldata c, bool lifted)
        private
        view
        returns (uint256 amount, uint256 reward)
    {
        amount = c.amount;
        reward = c.reward;
        if (lifted) {
            uint256[2] storage share = _liftedShare[_creditKey(batchId, index, c.node)];
            amount -= share[0];
            reward -= share[1];
        }
    }

    /// @dev Takes a sound job out of its batch into a market record; its shares leave the
    /// entry's credits.
    function _lift(EntryRef calldata ref, BatchedJob calldata job, bytes32[] calldata proof)
        private
        returns (bytes32 jobHash)
    {
        Batch storage b = _live(ref);
        jobHash = _market.hashJob(job.job);
        _requireInEntry(ref, _leafOf(job, jobHash), proof);
        if (_market.getJob(jobHash).status != IJobMarket.JobStatus.None) revert AlreadyRecorded(jobHash);
        Fault fault = _leafFault(job, jobHash, ref.entry.client, b.poster, b.postedAt);
        if (fault == Fault.None && !_credited(ref, job)) fault = Fault.NotCredited;
        if (fault != Fault.None) revert LeafFaulty(jobHash, fault);

        IJobMarket.JobRecord memory rec = _takeShares(b, ref, job);
        rec.status = IJobMarket.JobStatus.Submitted;
        rec.client = ref.entry.client;
        rec.submitter = b.poster;
        rec.submittedAt = b.postedAt;
        rec.tokensServed = job.tokensServed;
        rec.commitment = job.commitment;
        _liftedFrom[jobHash] = _leafKey(ref, job.index);
        b.lifted |= 1 << ref.index;
        b.outstanding -= SafeCast.toUint128(rec.cost);
        emit JobLifted(ref.batchId, ref.index, jobHash, rec.cost);
        _market.adoptJob(jobHash, rec);
    }

    /// @dev Records each hop's pay and reward as taken out of the entry, and returns them as
    /// a job record's hops, layers, amounts and cost.
    function _takeShares(Batch storage b, EntryRef calldata ref, BatchedJob calldata job)
        private
        returns (IJobMarket.JobRecord memory rec)
    {
        uint256 hops = job.job.route.length;
        uint256 totalLayers = _totalLayers(job.job);
        rec.hops = new address[](hops);
        rec.layers = new uint16[](hops);
        rec.amounts = new uint256[](hops);
        for (uint256 i = 0; i < hops; ++i) {
            (uint256 amount, uint256 reward) = _hopPay(job, i, totalLayers);
            uint256[2] storage share = _liftedShare[_creditKey(ref.batchId, ref.index, job.job.route[i])];
            share[0] += amount;
            share[1] += reward;
            _deduct(b, ref.batchId, job.job.route[i], amount, reward);
            rec.hops[i] = job.job.route[i];
            rec.layers[i] = job.job.spanEnds[i] - job.job.spanStarts[i];
            rec.amounts[i] = amount;
            rec.cost += amount;
        }
    }

    /// @dev The first rule `job` breaks as a job of `client`'s entry, posted by `poster` at
    /// `postedAt`. Only plain ECDSA signatures count: a contract wallet could make a
    /// signature it gave invalid later, and so void a batch that paid for honest work.
    // slither-disable-next-line unused-return -- tryRecover's third value only details the error it also returns
    function _leafFault(BatchedJob calldata job, bytes32 jobHash, address client, address poster, uint64 postedAt)
        private
        pure
        returns (Fault)
    {
        IJobMarket.Job calldata j = job.job;
        uint256 hops = j.route.length;
        if (hops == 0 || hops > type(uint8).max || j.spanStarts.length != hops || j.spanEnds.length != hops) {
            return Fault.BadRoute;
        }
        uint16 expectedStart = 0;
        bool posterInRoute = false;
        for (uint256 i = 0; i < hops; ++i) {
            if (j.spanStarts[i] != expectedStart || j.spanEnds[i] <= expectedStart) return Fault.BadRoute;
            expectedStart = j.spanEnds[i];
            if (j.route[i] == poster) posterInRoute = true;
        }
        if (j.client != client) return Fault.WrongClient;
        if (job.prices.length != hops) return Fault.BadPrices;
        for (uint256 i = 0; i < hops; ++i) {
            if (job.prices[i] > j.maxPricePerToken) return Fault.BadPrices;
        }
        if (job.tokensServed == 0 || job.tokensServed > j.maxTokens) return Fault.BadTokens;
        if (j.deadline < postedAt) return Fault.Expired;
        if (!posterInRoute) return Fault.PosterNotInRoute;
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(jobHash, job.signature);
        if (err != ECDSA.RecoverError.NoError || signer != client) return Fault.BadSignature;
        return Fault.None;
    }

    function _leafOf(BatchedJob calldata job, bytes32 jobHash) private pure returns (bytes32) {
        return _hashLeaf(
            job.index, jobHash, keccak256(job.signature), job.tokensServed, job.commitment, job.prices
        );
    }

    function _leafHash(Leaf calldata leaf) private pure returns (bytes32) {
        return _hashLeaf(
            leaf.index, leaf.jobHash, leaf.signatureHash, leaf.tokensServed, leaf.commitment, leaf.prices
        );
    }

    /// @dev Double-hashed, as OpenZeppelin's Merkle trees hash leaves, so that no inner node
    /// of the tree is also a leaf.
    function _hashLeaf(
        uint32 index,
        bytes32 jobHash,
        bytes32 signatureHash,
        uint32 tokensServed,
        bytes32 commitment,
        uint256[] calldata prices
    ) private pure returns (bytes32) {
        return keccak256(
            bytes.concat(keccak256(abi.encode(index, jobHash, signatureHash, tokensServed, commitment, prices)))
        );
    }

    function _entryKey(uint256 batchId, uint256 index) private pure returns (bytes32) {
        return keccak256(abi.encode(batchId, index));
    }

    function _payoutKey(uint256 batchId, address node) private pure returns (bytes32) {
        return keccak256(abi.encode(batchId, node));
    }

    function _creditKey(uint256 batchId, uint256 index, address node) private pure returns (bytes32) {
        return keccak256(abi.encode(batchId, index, node));
    }

    function _leafKey(EntryRef calldata ref, uint32 leafIndex) private pure returns (bytes32) {
        return keccak256(abi.encode(ref.batchId, ref.index, leafIndex));
    }
}
