// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Job market: escrow, settlement, verifiers and challenges
/// @notice Clients prepay into escrow; a submitted job locks its cost until the challenge
/// window passes; verifiers can overturn a job and get the cheating hop slashed.
interface IJobMarket {
    /// @notice Lifecycle of a job: `None → Submitted → Finalized | Challenged`.
    enum JobStatus {
        None,
        Submitted,
        Finalized,
        Challenged
    }

    /// @notice Market parameters, fixed at deployment.
    struct MarketParams {
        uint64 challengeWindow;
        uint64 withdrawalDelay;
        uint64 maxJobTtl;
        uint256 minVerifierStake;
        uint64 verifierUnbondingDelay;
        uint256 slashAmount;
        uint16 bountyBps;
        uint8 quorum;
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

    /// @notice A submitted job as stored; `amounts[i]` is what hop `i` is owed.
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
    }

    /// @notice A pending escrow withdrawal.
    struct PendingWithdrawal {
        uint256 amount;
        uint64 readyAt;
    }

    /// @notice A verifier's stake and, once it asked to leave, when it may withdraw.
    struct VerifierInfo {
        uint256 stake;
        uint64 unbondingAt;
    }

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
    /// @notice `verifier` added `amount` to its stake, which is now `totalStake`.
    event VerifierStaked(address indexed verifier, uint256 amount, uint256 totalStake);
    /// @notice `verifier` stopped verifying; its `stake` can be withdrawn from `unbondingAt`.
    event VerifierUnstakeRequested(address indexed verifier, uint256 stake, uint64 unbondingAt);
    /// @notice `verifier` took back its stake.
    event VerifierWithdrawn(address indexed verifier, uint256 amount);
    /// @notice `verifier` voted that `hop` of a job cheated; the hop now has `votes` votes.
    event ChallengeVoted(
        bytes32 indexed jobHash, address indexed verifier, uint8 hop, bytes32 evidence, uint256 votes
    );
    /// @notice A job was overturned: the client was refunded, `node` lost `slashed`, of which
    /// `bounty` went to the voting verifiers.
    event JobChallenged(bytes32 indexed jobHash, address indexed node, uint8 hop, uint256 slashed, uint256 bounty);
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
    /// @notice A hop of the route is not an active node.
    error NodeNotActive(address node);
    /// @notice A hop serves another model than the job asks for.
    error ModelMismatch(address node, bytes32 expected, bytes32 actual);
    /// @notice A hop's registered span differs from its span in the job (`start`, `end` are the job's).
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
    /// @notice The caller is not an active verifier.
    error NotVerifier(address caller);
    /// @notice This verifier already voted on this job.
    error AlreadyVoted(bytes32 jobHash, address verifier);
    /// @notice The hop index is not below the number of hops.
    error InvalidHop(uint8 hop, uint256 hops);
    /// @notice A first verifier stake of `have` is below the minimum `need`.
    error StakeBelowMinimum(address account, uint256 have, uint256 need);
    /// @notice The verifier is unbonding and must withdraw before it stakes again.
    error VerifierUnbonding(address verifier);
    /// @notice The account has not requested to unstake.
    error NotUnbonding(address account);
    /// @notice Withdrawal opens at `unbondingAt`; it is `nowTs`.
    error UnbondingNotOver(address account, uint256 nowTs, uint256 unbondingAt);

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

    /// @notice Pays a job's hops once its challenge window has passed; anyone may call.
    function finalize(bytes32 jobHash) external;

    /// @notice Adds to the caller's verifier stake.
    function stakeVerifier(uint256 amount) external;

    /// @notice Stops verifying; the stake unlocks after the verifier unbonding delay.
    function requestVerifierUnstake() external;

    /// @notice Pays back the verifier stake once its unbonding delay has passed.
    function withdrawVerifierStake() external;

    /// @notice Votes that `hop` of a pending job cheated.
    function challenge(bytes32 jobHash, uint8 hop, bytes32 evidence) external;

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

    /// @notice `verifier`'s stake (active or unbonding).
    function verifierStake(address verifier) external view returns (uint256);

    /// @notice Whether `verifier` may challenge.
    function isVerifier(address verifier) external view returns (bool);

    /// @notice Sum of all client escrows.
    function totalEscrow() external view returns (uint256);

    /// @notice Sum of all locked job payments.
    function totalLocked() external view returns (uint256);

    /// @notice Sum of all verifier stakes.
    function totalVerifierStake() external view returns (uint256);

    /// @notice `verifier`'s stake and, once it asked to leave, when it may withdraw (else 0).
    function getVerifier(address verifier) external view returns (VerifierInfo memory);

    /// @notice The payment token.
    function token() external view returns (IERC20);

    /// @notice The node registry this market slashes through.
    function registry() external view returns (address);
}
