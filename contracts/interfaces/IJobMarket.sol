// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Job market: escrow, settlement, the reward pool, and the outcome of disputes
/// @notice Clients prepay into escrow; a submitted job locks its cost until the challenge
/// window passes. A dispute (opened in the court) freezes the job; the court's verdict
/// overturns or releases it. An over-charge is proven here directly, from the receipts the
/// commitment hashes.
interface IJobMarket {
    /// @notice Lifecycle of a job: `None → Submitted ⇄ Disputed`, then `Finalized` (paid)
    /// or `Challenged` (overturned: the client refunded, the faulty hop slashed).
    enum JobStatus {
        None,
        Submitted,
        Finalized,
        Challenged,
        Disputed
    }

    /// @notice Market parameters, fixed at deployment.
    struct MarketParams {
        uint64 challengeWindow;
        uint64 withdrawalDelay;
        uint64 maxJobTtl;
        uint256 slashAmount;
        uint16 bountyBps;
        uint256 rewardPerToken;
    }

    /// @notice A job as the client signs it (EIP-712, field order is the signed order).
    struct Job {
        bytes32 modelId;
        address[] route;
        uint16[] spanStarts;
        uint16[] spanEnds;
        uint32 maxTokens;
        uint256 maxPricePerToken;
        uint256 nonce;
        uint64 deadline;
        address client;
    }

    /// @notice A client's signed change to a job in flight: from position `fromPosition` on,
    /// route hop `hop` is served by `replacement` (same span, same model, price under the
    /// job's cap). The hop's earlier holder is owed the positions before `fromPosition`; the
    /// replacement is owed every position up to the next amendment of that hop (or the
    /// job's end), the positions it replayed to rebuild the hop's cache included.
    struct Amendment {
        uint8 hop;
        address replacement;
        uint32 fromPosition;
    }

    /// @notice A submitted job as stored; `amounts[i]` is what hop `i` is owed. The challenge
    /// window runs from `submittedAt`, or from `releasedAt` once a dispute found no fault
    /// (so that a dispute cannot run out the window an over-charge proof needs).
    struct JobRecord {
        JobStatus status;
        address client;
        address submitter;
        uint64 submittedAt;
        uint32 tokensServed;
        bytes32 commitment;
        uint256 cost;
        address[] hops;
        uint16[] layers;
        uint256[] amounts;
        uint64 releasedAt;
    }

    /// @notice A pending escrow withdrawal.
    struct PendingWithdrawal {
        uint256 amount;
        uint64 readyAt;
    }

    /// @notice From position `fromPosition` on, `replacement` served route hop `hop` of the
    /// job; it is the job's record hop `index`.
    event JobAmended(bytes32 indexed jobHash, uint8 hop, address indexed replacement, uint32 fromPosition, uint8 index);
    /// @notice `client` added `amount` to its escrow, which is now `balance`.
    event Deposited(address indexed client, uint256 amount, uint256 balance);
    /// @notice `client` asked to withdraw `amount`, executable from `readyAt`.
    event WithdrawalRequested(address indexed client, uint256 amount, uint64 readyAt);
    /// @notice `client` took `amount` out of its escrow.
    event Withdrawn(address indexed client, uint256 amount);
    /// @notice A route node committed a job's result and its `cost` left the client's escrow.
    event ResultSubmitted(
        bytes32 indexed jobHash,
        address indexed client,
        address indexed submitter,
        uint32 tokensServed,
        bytes32 commitment,
        uint256 cost
    );
    /// @notice A job settled: its hops were paid `cost` plus `reward` from the pool.
    event JobFinalized(bytes32 indexed jobHash, uint256 cost, uint256 reward);
    /// @notice Hop `node` of a finalized job was paid `amount` plus `reward`.
    event HopPaid(bytes32 indexed jobHash, address indexed node, uint256 amount, uint256 reward);
    /// @notice The court froze a job's payout while it judges `hop`.
    event JobDisputed(bytes32 indexed jobHash, uint8 hop);
    /// @notice The court found no fault: the job is payable again once its window is over.
    event JobReleased(bytes32 indexed jobHash);
    /// @notice A job was overturned: the client was refunded, `node` (hop `hop`) lost
    /// `slashed`, of which `bounty` went to whoever proved the fault (the court, for a jury's
    /// verdict) and the rest, after the other hops' pay, to the reward pool.
    event JobChallenged(bytes32 indexed jobHash, address indexed node, uint8 hop, uint256 slashed, uint256 bounty);
    /// @notice Hop `node` of an overturned job was paid `amount` for its work out of the slash.
    event HopCompensated(bytes32 indexed jobHash, address indexed node, uint256 amount);
    /// @notice A job submitted on its own after a batch had paid it was overturned.
    event ResubmissionOverturned(bytes32 indexed jobHash, address indexed submitter, uint256 slashed, uint256 bounty);
    /// @notice `prover` showed the committed receipts prove `proven` positions where the job
    /// charged `charged`.
    event OverchargeProven(bytes32 indexed jobHash, address indexed prover, uint32 proven, uint32 charged);
    /// @notice The court was set; it alone can freeze, release and overturn jobs.
    // slither-disable-next-line unindexed-event-address -- emitted once, at deployment
    event CourtSet(address court);
    /// @notice The batch settlement was set; it alone can debit, pay and refund batches.
    // slither-disable-next-line unindexed-event-address -- emitted once, at deployment
    event BatchesSet(address batches);
    /// @notice `funder` added `amount` to the reward pool, which is now `pool`.
    event RewardsFunded(address indexed funder, uint256 amount, uint256 pool);

    /// @notice Parameters are inconsistent (see the constructor's checks).
    error InvalidParams();
    /// @notice `client` has `have` in escrow where `need` is required.
    error InsufficientEscrow(address client, uint256 have, uint256 need);
    /// @notice The pending withdrawal opens at `readyAt`; it is `nowTs`.
    error WithdrawalNotReady(address client, uint256 nowTs, uint256 readyAt);
    /// @notice `client` has no pending withdrawal.
    error NoPendingWithdrawal(address client);
    /// @notice The route is empty, its arrays differ in length, has more than 255 hops, or
    /// its spans are not contiguous non-empty spans starting at layer 0.
    error InvalidRoute();
    /// @notice The caller is not a node of the job's route.
    error NotRouteNode(address caller);
    /// @notice The signature is not the client's (neither ECDSA nor ERC-1271).
    error InvalidSignature();
    /// @notice The job's deadline has passed.
    error JobExpired(uint64 deadline, uint256 nowTs);
    /// @notice This job hash was already submitted.
    error JobAlreadySubmitted(bytes32 jobHash);
    /// @notice More tokens served than the client allowed.
    error TooManyTokens(uint32 served, uint32 max);
    /// @notice A job must serve at least one token.
    error NoTokensServed();
    /// @notice A hop of the route is not an active node, nor one that asked to leave after
    /// the job may have been sent to it.
    error NodeNotActive(address node);
    /// @notice A hop serves another model than the job asks for.
    error ModelMismatch(address node, bytes32 expected, bytes32 actual);
    /// @notice A hop's layers in the job (`start`, `end`) do not lie inside its registered span.
    error SpanMismatch(address node, uint16 start, uint16 end);
    /// @notice A hop's per-layer price is above the client's cap.
    error PriceAboveCap(address node, uint256 price, uint256 cap);
    /// @notice No job with this hash was submitted.
    error UnknownJob(bytes32 jobHash);
    /// @notice The job is no longer pending (already finalized or challenged).
    error JobNotPending(bytes32 jobHash);
    /// @notice The challenge window is still open until `endsAt`.
    error ChallengeWindowOpen(bytes32 jobHash, uint256 endsAt);
    /// @notice The challenge window closed at `endedAt`.
    error ChallengeWindowClosed(bytes32 jobHash, uint256 endedAt);
    /// @notice The hop index is not below the number of hops.
    error InvalidHop(uint8 hop, uint256 hops);
    /// @notice The job is frozen by a dispute; it settles when the court decides.
    error JobUnderDispute(bytes32 jobHash);
    /// @notice Only the court may call this.
    error NotCourt(address caller);
    /// @notice Only the deployer may set the court, once.
    error CourtAlreadySet();
    /// @notice Only the batch settlement may call this.
    error NotBatches(address caller);
    /// @notice Only the deployer may set the batch settlement, once.
    error BatchesAlreadySet();
    /// @notice The receipts given do not hash to the job's commitment.
    error ReceiptsMismatch(bytes32 jobHash);
    /// @notice The receipts are not a whole number of 173-byte receipts.
    error ReceiptsMalformed(uint256 length);
    /// @notice The committed receipts prove `proven` positions, at least the `charged` ones.
    error NoOvercharge(uint32 proven, uint32 charged);
    /// @notice Amendment `index` is out of order, names an unknown hop, a node the record
    /// already holds, or a position past the tokens served; or there are none, or too many.
    error InvalidAmendment(uint256 index);
    /// @notice Amendment `index` is not signed by the job's client.
    error InvalidAmendmentSignature(uint256 index);

    /// @notice Adds `amount` to the caller's escrow.
    function deposit(uint256 amount) external;

    /// @notice Adds `amount` to the caller's escrow, approving through an EIP-2612 permit.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Records a withdrawal of `amount`, replacing any earlier one.
    function requestWithdrawal(uint256 amount) external;

    /// @notice Pays `min(requested, escrow)` once the withdrawal delay has passed.
    function withdraw() external;

    /// @notice Commits a job's result and locks its cost; called by a node of the route.
    function submitResult(Job calldata job, bytes calldata signature, uint32 tokensServed, bytes32 commitment)
        external;

    /// @notice `submitResult` for a job whose client replaced hops mid-answer: the record
    /// holds the route's hops, then each amendment's replacement in the amendments' order
    /// (sorted by hop, then by position). Each amendment is the client's EIP-712 signature
    /// over `hashAmendment`.
    function submitAmended(
        Job calldata job,
        bytes calldata signature,
        Amendment[] calldata amendments,
        bytes[] calldata amendmentSignatures,
        uint32 tokensServed,
        bytes32 commitment
    ) external;

    /// @notice The EIP-712 digest a client signs to amend job `jobHash`.
    function hashAmendment(bytes32 jobHash, Amendment calldata amendment) external view returns (bytes32);

    /// @notice How many of a job's record hops are replacements (they follow the route's).
    function replacementsOf(bytes32 jobHash) external view returns (uint256);

    /// @notice Pays a job's hops once its challenge window has passed; anyone may call.
    function finalize(bytes32 jobHash) external;

    /// @notice Overturns a pending job whose submitter charged more positions than the
    /// receipts it committed to prove (`receipts`: the commitment's preimage, 173 bytes per
    /// receipt in (step, hop) order); the bounty goes to the caller. Anyone may call within
    /// the challenge window.
    function proveOvercharge(bytes32 jobHash, bytes calldata receipts) external;

    /// @notice The positions that `receipts` prove served for `jobHash` over `hops` hops,
    /// step after step from position 0, and the commitment they hash to.
    function provenPositions(bytes32 jobHash, uint256 hops, bytes calldata receipts)
        external
        pure
        returns (uint32 proven, bytes32 commitment);

    /// @notice Court only: freezes a pending job inside its challenge window while `hop` is
    /// judged; returns the job's hops.
    function freeze(bytes32 jobHash, uint8 hop) external returns (address[] memory hops);

    /// @notice Court only: the dispute found no fault; the job is payable again.
    function release(bytes32 jobHash) external;

    /// @notice Court only: the dispute found `hop` at fault; overturns the job and sends the
    /// bounty to the court. Returns the bounty.
    function overturn(bytes32 jobHash, uint8 hop) external returns (uint256 bounty);

    /// @notice Deployer only, once: the court that judges disputes.
    function setCourt(address court_) external;

    /// @notice Deployer only, once: the batch settlement whose batches this market pays.
    function setBatches(address batches_) external;

    /// @notice Batches only: moves each client's debit from its escrow into the batches'
    /// holdings, skipping (bit `i` of `unfunded`) a client whose escrow does not cover it.
    function debitBatch(address[] calldata clients, uint256[] calldata debits)
        external
        returns (uint256 unfunded, uint256 total);

    /// @notice Batches only: pays nodes out of the batches' holdings, plus their rewards from
    /// the pool (scaled down together if the pool is short); returns the rewards paid.
    function payBatch(address[] calldata nodes, uint256[] calldata amounts, uint256[] calldata rewards)
        external
        returns (uint256[] memory paidRewards);

    /// @notice Batches only: a proven bad entry; refunds `amount` to `client` out of the
    /// batches' holdings and slashes `poster`, the bounty going to `bountyTo`.
    function refundBatched(address client, uint256 amount, address poster, address bountyTo)
        external
        returns (uint256 slashed);

    /// @notice Batches only: a job leaves its batch as a submitted job record (its cost moves
    /// from the batches' holdings to the locked jobs).
    function adoptJob(bytes32 jobHash, JobRecord calldata record) external;

    /// @notice Batches only: a pending job that a batch had already paid; refunds the client,
    /// slashes the submitter and pays `prover` the bounty (the other hops were paid by the batch).
    function overturnResubmitted(bytes32 jobHash, address prover) external;

    /// @notice Batches only: `proveOvercharge` on behalf of `prover`.
    function proveOverchargeFor(bytes32 jobHash, bytes calldata receipts, address prover) external;

    /// @notice Adds `amount` to the reward pool.
    function fundRewards(uint256 amount) external;

    /// @notice The EIP-712 digest of `job`, which is its id.
    function hashJob(Job calldata job) external view returns (bytes32);

    /// @notice The market parameters.
    function params() external view returns (MarketParams memory);

    /// @notice `client`'s escrow balance.
    function escrowOf(address client) external view returns (uint256);

    /// @notice `client`'s pending withdrawal (zero when none).
    function pendingWithdrawal(address client) external view returns (uint256 amount, uint64 readyAt);

    /// @notice The stored record of a submitted job.
    function getJob(bytes32 jobHash) external view returns (JobRecord memory);

    /// @notice Tokens waiting to reward verified work.
    function rewardPool() external view returns (uint256);

    /// @notice The hops of a submitted job, in route order.
    function hopsOf(bytes32 jobHash) external view returns (address[] memory);

    /// @notice Sum of all client escrows.
    function totalEscrow() external view returns (uint256);

    /// @notice Sum of all locked job payments.
    function totalLocked() external view returns (uint256);

    /// @notice Sum of what posted, unfinalized batches hold for their nodes.
    function totalBatched() external view returns (uint256);

    /// @notice The batch settlement (zero until set).
    function batches() external view returns (address);

    /// @notice The payment token.
    function token() external view returns (IERC20);

    /// @notice The node registry this market slashes through.
    function registry() external view returns (address);

    /// @notice The court that judges disputes (zero until set).
    function court() external view returns (address);
}
