// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "./IJobMarket.sol";

/// @title Batched settlement: many jobs per transaction, checked optimistically
/// @notice A node posts a batch: one entry per client, each entry the root of a Merkle tree
/// over that client's jobs and what they owe each node. Posting debits every client's escrow
/// by its entry's total and checks nothing per job; anyone can prove a bad leaf, a job paid
/// twice, or demand an entry's jobs, within the challenge window. A proven bad entry refunds
/// its client in full and slashes the poster; a single job can leave its batch to be
/// disputed in the court or proven over-charged, without touching the rest of the batch.
interface IBatchSettlement {
    /// @notice What an entry owes one node: its pay and its reward from the pool.
    struct Credit {
        address node;
        uint256 amount;
        uint256 reward;
    }

    /// @notice One client's jobs in a batch: `jobsRoot` is the root of an OpenZeppelin
    /// Merkle tree (commutative keccak) over `jobs` leaves; credits are sorted by node.
    struct Entry {
        address client;
        bytes32 jobsRoot;
        uint32 jobs;
        Credit[] credits;
    }

    /// @notice A job as its leaf commits to it: the signed job, the client's signature, the
    /// leaf's position in its entry, the tokens served, the receipts' commitment, and each
    /// hop's price per token per layer (at most the job's cap).
    struct BatchedJob {
        IJobMarket.Job job;
        bytes signature;
        uint32 index;
        uint32 tokensServed;
        bytes32 commitment;
        uint256[] prices;
    }

    /// @notice A leaf's fields without the job itself (enough to prove a job paid twice).
    struct Leaf {
        uint32 index;
        bytes32 jobHash;
        bytes32 signatureHash;
        uint32 tokensServed;
        bytes32 commitment;
        uint256[] prices;
    }

    /// @notice Where an entry sits: its batch, its index, and every entry hash of the batch
    /// (their packed keccak is the batch's `entriesHash`).
    struct EntryRef {
        uint256 batchId;
        uint16 index;
        bytes32[] entryHashes;
        Entry entry;
    }

    /// @notice What a batch pays: per node, in the order the funded entries first credit
    /// them, its pay and its reward. Its hash is stored at posting.
    struct Payout {
        address[] nodes;
        uint256[] amounts;
        uint256[] rewards;
    }

    enum BatchStatus {
        None,
        Posted,
        Finalized
    }

    /// @notice A posted batch. Bit `i` of `unfunded`, `voided`, `lifted` and `demanded` is
    /// about entry `i`. `outstanding` is what the batch still holds for its nodes; `adjusted`
    /// says a void or a lift took some of the payout away.
    struct Batch {
        address poster;
        uint64 postedAt;
        BatchStatus status;
        uint16 entries;
        bytes32 entriesHash;
        bytes32 payoutHash;
        uint128 outstanding;
        uint16 openDemands;
        bool adjusted;
        uint256 unfunded;
        uint256 voided;
        uint256 lifted;
        uint256 demanded;
    }

    /// @notice Batch parameters, fixed at deployment.
    struct BatchParams {
        uint256 demandBond;
        uint64 responseWindow;
    }

    /// @notice Why an entry was voided.
    enum Fault {
        None,
        BadRoute,
        WrongClient,
        BadSignature,
        Expired,
        BadTokens,
        BadPrices,
        PosterNotInRoute,
        NotCredited,
        Replayed,
        Withheld
    }

    /// @notice A demand for an entry's jobs: the demander's bond and when the poster's
    /// answer is due.
    struct Demand {
        address demander;
        uint64 dueAt;
    }

    /// @notice `poster` posted batch `batchId` of `entries` entries holding `total`, to be
    /// paid as `nodes`, `amounts`, `rewards` (the batch's payout) unless proofs change it.
    event BatchPosted(
        uint256 indexed batchId,
        address indexed poster,
        bytes32 entriesHash,
        uint16 entries,
        uint256 total,
        address[] nodes,
        uint256[] amounts,
        uint256[] rewards
    );
    /// @notice Entry `index` of a batch debits `client` by `debit`, or nothing if `funded`
    /// is false (the escrow did not cover it; its jobs are not paid by this batch).
    event EntryPosted(uint256 indexed batchId, address indexed client, uint16 index, uint256 debit, bool funded);
    /// @notice A batch paid its nodes `paid` plus `rewards` from the pool.
    event BatchFinalized(uint256 indexed batchId, uint256 paid, uint256 rewards);
    /// @notice Batch `batchId` paid `node` `amount` plus `reward`.
    event NodePaid(uint256 indexed batchId, address indexed node, uint256 amount, uint256 reward);
    /// @notice A bad entry was proven: its client got `refund` back, the poster lost `slashed`.
    event EntryVoided(uint256 indexed batchId, uint16 index, address indexed client, Fault fault, uint256 refund, uint256 slashed);
    /// @notice A job left its batch to be judged on its own (it is now a market job record).
    event JobLifted(uint256 indexed batchId, uint16 index, bytes32 indexed jobHash, uint256 cost);
    /// @notice `demander` asked the poster to show entry `index`'s jobs by `dueAt`.
    event EntryDemanded(uint256 indexed batchId, uint16 index, address indexed demander, uint64 dueAt);
    /// @notice The poster showed entry `index`'s jobs, and every one was sound.
    event EntryShown(uint256 indexed batchId, uint16 index);

    /// @notice An empty batch, or more entries than a batch holds.
    error BadBatchSize(uint256 entries);
    /// @notice Entry `index` is malformed: clients out of order, no jobs or too many, no
    /// credits or too many, credits out of order.
    error BadEntry(uint16 index);
    /// @notice The poster, or a node an entry credits, is neither active nor a node that
    /// asked to leave less than the registry's `termsLock` ago (`payableUntil`).
    error NodeNotActive(address node);
    /// @notice No batch with this id.
    error UnknownBatch(uint256 batchId);
    /// @notice The batch was already finalized.
    error BatchNotPending(uint256 batchId);
    /// @notice The challenge window is open until `endsAt`.
    error WindowOpen(uint256 batchId, uint256 endsAt);
    /// @notice The challenge window closed at `endedAt`.
    error WindowClosed(uint256 batchId, uint256 endedAt);
    /// @notice Demands are waiting for the poster's answer.
    error DemandsOpen(uint256 batchId, uint16 open);
    /// @notice The entries given are not the batch's.
    error EntriesMismatch(uint256 batchId);
    /// @notice The payout given is not the batch's.
    error PayoutMismatch(uint256 batchId);
    /// @notice The leaf is not in the entry's tree.
    error NotInEntry(uint256 batchId, uint16 index);
    /// @notice The entry is void or unfunded.
    error EntryNotLive(uint256 batchId, uint16 index);
    /// @notice The leaf given is sound; there is nothing to prove.
    error LeafSound(bytes32 jobHash);
    /// @notice A lifted job must be sound; prove its fault (`proveBadLeaf`) instead.
    error LeafFaulty(bytes32 jobHash, Fault fault);
    /// @notice The two leaves are the same leaf, or are different jobs.
    error NotAReplay();
    /// @notice The job already has a market record (it was submitted or lifted).
    error AlreadyRecorded(bytes32 jobHash);
    /// @notice The entry already has an open demand.
    error AlreadyDemanded(uint256 batchId, uint16 index);
    /// @notice No open demand on the entry.
    error NoDemand(uint256 batchId, uint16 index);
    /// @notice The poster's answer is due at `dueAt`.
    error DemandNotDue(uint256 batchId, uint16 index, uint64 dueAt);
    /// @notice The poster's answer came after `dueAt`.
    error DemandExpired(uint256 batchId, uint16 index, uint64 dueAt);
    /// @notice The jobs shown are not the entry's: wrong count, order, root or totals.
    error ShownMismatch(uint256 batchId, uint16 index);
    /// @notice Only the poster may answer a demand; only the court may lift for a dispute.
    error Unauthorized(address caller);
    /// @notice Parameters are inconsistent.
    error InvalidParams();

    /// @notice Posts a batch; the caller and every credited node must be payable (active, or
    /// unbonding for less than the registry's `termsLock`). Entries are sorted by
    /// client; each client's escrow is debited by its entry's total, or the entry is marked
    /// unfunded if the escrow does not cover it.
    function postBatch(Entry[] calldata entries) external returns (uint256 batchId);

    /// @notice Pays a batch's nodes once its window has passed and no demand is open, less
    /// what proofs and lifts took out; anyone may call, with the payout as posted.
    function finalizeBatch(uint256 batchId, Payout calldata payout) external;

    /// @notice Voids an entry with a leaf that breaks a rule: forged signature, expired,
    /// over its caps, a route that is not one, a poster outside the route, or pay the entry
    /// does not credit. The caller gets the bounty.
    function proveBadLeaf(EntryRef calldata ref, BatchedJob calldata job, bytes32[] calldata proof) external;

    /// @notice Voids the entry of `second`, a leaf whose job was paid before: in `first` (a
    /// leaf of an earlier batch, or another leaf of the same entry) or, with `first` left
    /// empty, as a market job record submitted no later than `second`'s batch and not lifted
    /// from it. The later copy is always the one undone, so copying an honest poster's jobs
    /// cannot void its entry.
    function proveReplay(
        EntryRef calldata firstRef,
        Leaf calldata first,
        bytes32[] calldata firstProof,
        EntryRef calldata secondRef,
        Leaf calldata second,
        bytes32[] calldata secondProof
    ) external;

    /// @notice Overturns a market job record submitted after a funded, unvoided batch already
    /// holds the same job (`leaf`): the client is refunded, the submitter slashed, the caller
    /// paid the bounty. Provable while the record's own window is open, even once the batch is
    /// final.
    function proveResubmitted(EntryRef calldata ref, Leaf calldata leaf, bytes32[] calldata proof) external;

    /// @notice Asks the poster to show an entry's jobs within the response window, posting
    /// the demand bond (paid to the poster if every job is sound).
    function demandEntry(uint256 batchId, uint16 index) external;

    /// @notice The poster shows a demanded entry's jobs, in leaf order; they must rebuild
    /// its root and its credits, and every one must be sound.
    function showEntry(EntryRef calldata ref, BatchedJob[] calldata jobs) external;

    /// @notice Voids a demanded entry whose poster did not answer in time; the demander
    /// gets its bond back and the bounty.
    function forfeitEntry(EntryRef calldata ref) external;

    /// @notice Court only: takes a sound job out of its batch into a market job record, so
    /// that it can be disputed on its own. Returns the job's hash.
    function lift(EntryRef calldata ref, BatchedJob calldata job, bytes32[] calldata proof)
        external
        returns (bytes32 jobHash);

    /// @notice Lifts a job and proves it over-charged in one call (see the market's
    /// `proveOvercharge`); the caller gets the bounty.
    function proveOvercharge(
        EntryRef calldata ref,
        BatchedJob calldata job,
        bytes32[] calldata proof,
        bytes calldata receipts
    ) external;

    /// @notice The posted batch.
    function getBatch(uint256 batchId) external view returns (Batch memory);

    /// @notice How many batches were posted (ids run from 1).
    function batchCount() external view returns (uint256);

    /// @notice The open demand on an entry (zero when none).
    function demandOf(uint256 batchId, uint16 index) external view returns (Demand memory);

    /// @notice The leaf hash of a batched job, as the entry's tree holds it.
    function leafHash(BatchedJob calldata job) external view returns (bytes32);

    /// @notice The hash of an entry, as the batch's `entriesHash` packs them.
    function entryHash(Entry calldata entry) external pure returns (bytes32);

    /// @notice The rule a batched job breaks for an entry of `client` posted by `poster` at
    /// `postedAt`, or `Fault.None`.
    function leafFault(BatchedJob calldata job, address client, address poster, uint64 postedAt)
        external
        view
        returns (Fault);

    /// @notice The batch parameters.
    function params() external view returns (BatchParams memory);
}
