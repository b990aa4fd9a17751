// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "./IBatchSettlement.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Dispute court: verifier stakes, challenger bonds, juries, commit-reveal votes
/// @notice A verifier that finds a hop at fault opens a dispute with a bond; the job's payout
/// freezes. A jury of staked verifiers, drawn by stake weight from a block after the dispute
/// opened, recomputes independently and votes by commit and reveal; the majority of revealed
/// votes decides. No single party can move stake.
interface IDisputeCourt {
    /// @notice `None → Drawing → Voting → Upheld | Rejected`; a round with too few reveals
    /// goes back to `Drawing` once with a fresh jury.
    enum Phase {
        None,
        Drawing,
        Voting,
        Upheld,
        Rejected
    }

    /// @notice What the challenger claims. `Fault`: the hop's transcript fails a check (its
    /// receipts, the commitment, or its recomputed outputs). `Withholding`: the hop did not
    /// show its transcript. A rejected withholding claim returns the bond to the challenger
    /// (less the jurors' share): the hop was unavailable when asked, so the challenge was
    /// made in good faith.
    enum Kind {
        Fault,
        Withholding
    }

    /// @notice Court parameters, fixed at deployment.
    struct CourtParams {
        uint256 minVerifierStake;
        uint64 verifierUnbondingDelay;
        uint256 minBond;
        uint8 jurySize;
        uint64 responseWindow;
        uint64 commitWindow;
        uint64 revealWindow;
        uint256 jurorPenalty;
        uint16 jurorShareBps;
    }

    /// @notice A verifier's stake, the part of it locked in open cases, and, once it asked to
    /// leave, when it may withdraw.
    struct VerifierInfo {
        uint256 stake;
        uint256 locked;
        uint64 unbondingAt;
    }

    /// @notice One dispute per job, keyed by the job's hash.
    struct Dispute {
        Phase phase;
        Kind kind;
        uint8 hop;
        uint8 round;
        uint8 committed;
        uint8 revealed;
        uint8 upholdVotes;
        uint64 drawBlock;
        uint64 openedAt;
        uint64 commitEndsAt;
        uint64 revealEndsAt;
        address challenger;
        address accused;
        uint256 bond;
        uint256 penalties;
        bytes32 evidence;
        address[] jurors;
    }

    /// @notice A juror's ballot in a dispute.
    struct Ballot {
        bool seated;
        bool revealed;
        bool uphold;
        bytes32 commitment;
    }

    /// @notice `verifier` added `amount` to its stake, which is now `totalStake`.
    event VerifierStaked(address indexed verifier, uint256 amount, uint256 totalStake);
    /// @notice `verifier` stopped verifying; its `stake` can be withdrawn from `unbondingAt`.
    event VerifierUnstakeRequested(address indexed verifier, uint256 stake, uint64 unbondingAt);
    /// @notice `verifier` took back its stake.
    event VerifierWithdrawn(address indexed verifier, uint256 amount);
    /// @notice `challenger` disputed hop `hop` (node `accused`) with `bond`; the jury is drawn
    /// from the hash of block `drawBlock`.
    event DisputeOpened(
        bytes32 indexed jobHash,
        address indexed challenger,
        address indexed accused,
        uint8 hop,
        Kind kind,
        uint256 bond,
        bytes32 evidence,
        uint64 drawBlock
    );
    /// @notice The draw block's hash was out of reach (older than 256 blocks); a later block
    /// draws instead.
    event DrawDeferred(bytes32 indexed jobHash, uint64 drawBlock);
    /// @notice `juror` sits in round `round`; commits close at `commitEndsAt`, reveals at
    /// `revealEndsAt`.
    event JurorDrawn(
        bytes32 indexed jobHash, address indexed juror, uint8 round, uint64 commitEndsAt, uint64 revealEndsAt
    );
    /// @notice `juror` committed a hidden vote.
    event VoteCommitted(bytes32 indexed jobHash, address indexed juror);
    /// @notice `juror` revealed its vote.
    event VoteRevealed(bytes32 indexed jobHash, address indexed juror, bool uphold);
    /// @notice `juror` lost `amount` of its stake: it voted against the majority or did not
    /// reveal.
    event JurorPenalized(bytes32 indexed jobHash, address indexed juror, uint256 amount, bool revealed);
    /// @notice `juror` voted with the majority and was paid `amount`.
    event JurorPaid(bytes32 indexed jobHash, address indexed juror, uint256 amount);
    /// @notice Round `round` had `reveals` reveals, fewer than a majority of its jury.
    event RoundFailed(bytes32 indexed jobHash, uint8 round, uint256 reveals);
    /// @notice The dispute ended: `upheld` (the hop slashed) or rejected; `challengerPaid`
    /// went to the challenger, `accusedPaid` to the accused node.
    event DisputeResolved(
        bytes32 indexed jobHash,
        bool upheld,
        uint256 upholdVotes,
        uint256 rejectVotes,
        uint256 challengerPaid,
        uint256 accusedPaid
    );

    /// @notice Parameters are inconsistent (see the constructor's checks).
    error InvalidParams();
    /// @notice The caller is not an active verifier.
    error NotVerifier(address caller);
    /// @notice A first verifier stake of `have` is below the minimum `need`.
    error StakeBelowMinimum(address account, uint256 have, uint256 need);
    /// @notice The verifier is unbonding and must withdraw before it stakes again.
    error VerifierUnbonding(address verifier);
    /// @notice The account has not requested to unstake.
    error NotUnbonding(address account);
    /// @notice Withdrawal opens at `unbondingAt`; it is `nowTs`.
    error UnbondingNotOver(address account, uint256 nowTs, uint256 unbondingAt);
    /// @notice `locked` of the verifier's stake sits in open cases; it cannot leave yet.
    error StakeLocked(address verifier, uint256 locked);
    /// @notice The bond is below the court's floor.
    error BondBelowMinimum(uint256 bond, uint256 minimum);
    /// @notice The job has been disputed already; a job is disputed once.
    error AlreadyDisputed(bytes32 jobHash);
    /// @notice No dispute on this job.
    error NoDispute(bytes32 jobHash);
    /// @notice The dispute is in `phase`, not in the one this call needs.
    error WrongPhase(bytes32 jobHash, Phase phase);
    /// @notice The jury is drawn from block `drawBlock`'s hash; it is block `nowBlock`.
    error DrawNotReady(bytes32 jobHash, uint256 drawBlock, uint256 nowBlock);
    /// @notice The caller does not sit on this dispute's current jury.
    error NotJuror(bytes32 jobHash, address caller);
    /// @notice This juror has committed already.
    error AlreadyCommitted(bytes32 jobHash, address juror);
    /// @notice A zero commitment: it cannot be revealed, and it would leave the ballot open
    /// to another commit while counting as one.
    error EmptyCommitment(bytes32 jobHash, address juror);
    /// @notice Commits closed at `endedAt`.
    error CommitClosed(bytes32 jobHash, uint256 endedAt);
    /// @notice Reveals open at `opensAt` (or when every juror has committed).
    error RevealNotOpen(bytes32 jobHash, uint256 opensAt);
    /// @notice Reveals closed at `endedAt`.
    error RevealClosed(bytes32 jobHash, uint256 endedAt);
    /// @notice This juror did not commit, so has nothing to reveal.
    error NotCommitted(bytes32 jobHash, address juror);
    /// @notice This juror has revealed already.
    error AlreadyRevealed(bytes32 jobHash, address juror);
    /// @notice The vote and salt do not hash to the juror's commitment.
    error CommitmentMismatch(bytes32 jobHash, address juror);
    /// @notice The dispute can be resolved from `at` (or when every juror has revealed).
    error NotResolvable(bytes32 jobHash, uint256 at);

    /// @notice Adds to the caller's verifier stake.
    function stakeVerifier(uint256 amount) external;

    /// @notice Stops verifying; the stake unlocks after the verifier unbonding delay, and once
    /// no case holds any of it. A verifier penalised below the minimum stake may leave too.
    function requestVerifierUnstake() external;

    /// @notice Pays back the verifier stake once its unbonding delay has passed.
    function withdrawVerifierStake() external;

    /// @notice Opens a dispute on hop `hop` of a pending job inside its challenge window,
    /// posting `bond` (at least `minBond`) from the caller, an active verifier.
    function openDispute(bytes32 jobHash, uint8 hop, Kind kind, bytes32 evidence, uint256 bond) external;

    /// @notice `openDispute` on a job settled in a batch: the job leaves its batch (the
    /// batch contract checks it is a sound leaf of a live entry, inside the batch's window)
    /// and is judged as a job of its own; the rest of the batch is untouched.
    function openBatchedDispute(
        IBatchSettlement.EntryRef calldata ref,
        IBatchSettlement.BatchedJob calldata job,
        bytes32[] calldata proof,
        uint8 hop,
        Kind kind,
        bytes32 evidence,
        uint256 bond
    ) external;

    /// @notice Draws the jury once the draw block is mined; anyone may call.
    function drawJury(bytes32 jobHash) external;

    /// @notice A juror's hidden vote: `keccak256(abi.encode(jobHash, round, juror, uphold, salt))`.
    function commitVote(bytes32 jobHash, bytes32 commitment) external;

    /// @notice Opens a juror's committed vote.
    function revealVote(bytes32 jobHash, bool uphold, bytes32 salt) external;

    /// @notice Ends the round once reveals are closed (or all are in); anyone may call.
    function resolve(bytes32 jobHash) external;

    /// @notice The court parameters.
    function params() external view returns (CourtParams memory);

    /// @notice The dispute on `jobHash` (phase `None` when there is none).
    function getDispute(bytes32 jobHash) external view returns (Dispute memory);

    /// @notice `juror`'s ballot on `jobHash`.
    function getBallot(bytes32 jobHash, address juror) external view returns (Ballot memory);

    /// @notice The commitment a juror sends for `uphold` and `salt`.
    function voteCommitment(bytes32 jobHash, uint8 round, address juror, bool uphold, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice How many verifiers could sit on a dispute of `jobHash` opened by `challenger`.
    function eligibleJurors(bytes32 jobHash, address challenger) external view returns (uint256);

    /// @notice `verifier`'s stake (active or unbonding).
    function verifierStake(address verifier) external view returns (uint256);

    /// @notice `verifier`'s stake, locked part and unbonding time.
    function getVerifier(address verifier) external view returns (VerifierInfo memory);

    /// @notice Whether `verifier` may challenge and sit on juries.
    function isVerifier(address verifier) external view returns (bool);

    /// @notice Every account that has a verifier stake here.
    function verifiers() external view returns (address[] memory);

    /// @notice Sum of all verifier stakes.
    function totalVerifierStake() external view returns (uint256);

    /// @notice What open disputes hold: their bonds and the penalties taken from their
    /// jurors so far.
    function totalHeld() external view returns (uint256);

    /// @notice The payment token.
    function token() external view returns (IERC20);

    /// @notice The market whose jobs this court judges.
    function market() external view returns (address);
}
