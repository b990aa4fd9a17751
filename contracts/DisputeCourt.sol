// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IDisputeCourt} from "./interfaces/IDisputeCourt.sol";
import {IBatchSettlement} from "./interfaces/IBatchSettlement.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title DisputeCourt
/// @notice Holds verifier stakes and challenger bonds, draws juries and counts their votes.
/// The market it judges for moves the job's money on its verdict.
contract DisputeCourt is IDisputeCourt, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _token;
    IJobMarket private immutable _market;
    CourtParams private _params;

    mapping(address verifier => VerifierInfo) private _verifiers;
    address[] private _verifierList;
    mapping(address verifier => uint256) private _listIndex; // index + 1; 0 when absent
    mapping(bytes32 jobHash => Dispute) private _disputes;
    mapping(bytes32 jobHash => mapping(address juror => Ballot)) private _ballots;

    uint256 private _totalVerifierStake;
    uint256 private _totalHeld;

    /// @param market_ The market whose jobs are judged; its court must be set to this.
    /// @param params_ Checked so that a jury can always sit (a minimum stake covers the
    /// penalty), a withholding hop gets its response window before the votes close, a node
    /// cannot leave before a dispute over its job ends and the window that a rejected
    /// dispute opens again is over, and the bond a griefer loses outweighs the largest
    /// bounty it could win (so griefing loses for any share of verifier stake below half).
    constructor(IERC20 token_, IJobMarket market_, CourtParams memory params_) {
        IJobMarket.MarketParams memory mp = market_.params();
        uint256 longest =
            2 * uint256(mp.challengeWindow) + 2 * (uint256(params_.commitWindow) + params_.revealWindow);
        if (
            params_.jurySize == 0 || params_.jurorShareBps > _BPS
                || params_.minBond <= mp.slashAmount * mp.bountyBps / _BPS
                || params_.minVerifierStake < params_.jurorPenalty || params_.minVerifierStake == 0
                || params_.commitWindow <= params_.responseWindow || params_.revealWindow == 0
                || address(market_.token()) != address(token_)
                || NodeRegistry(market_.registry()).unbondingDelay() <= longest
        ) revert InvalidParams();
        _token = token_;
        _market = market_;
        _params = params_;
    }

    // -------------------------------------------------------------------- verifiers

    /// @inheritdoc IDisputeCourt
    function stakeVerifier(uint256 amount) external nonReentrant {
        VerifierInfo storage info = _verifiers[msg.sender];
        if (info.unbondingAt != 0) revert VerifierUnbonding(msg.sender);
        uint256 need = _params.minVerifierStake;
        if (info.stake == 0 && amount < need) revert StakeBelowMinimum(msg.sender, amount, need);
        if (_listIndex[msg.sender] == 0) {
            _verifierList.push(msg.sender);
            _listIndex[msg.sender] = _verifierList.length;
        }
        info.stake += amount;
        _totalVerifierStake += amount;
        emit VerifierStaked(msg.sender, amount, info.stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IDisputeCourt
    function requestVerifierUnstake() external {
        VerifierInfo storage info = _verifiers[msg.sender];
        // Not `_isVerifier`: a juror penalised below the minimum stake must still be able to leave.
        if (info.stake == 0 || info.unbondingAt != 0) revert NotVerifier(msg.sender);
        info.unbondingAt = uint64(block.timestamp) + _params.verifierUnbondingDelay;
        emit VerifierUnstakeRequested(msg.sender, info.stake, info.unbondingAt);
    }

    /// @inheritdoc IDisputeCourt
    function withdrawVerifierStake() external nonReentrant {
        VerifierInfo memory info = _verifiers[msg.sender];
        if (info.unbondingAt == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < info.unbondingAt) {
            revert UnbondingNotOver(msg.sender, block.timestamp, info.unbondingAt);
        }
        if (info.locked != 0) revert StakeLocked(msg.sender, info.locked);
        delete _verifiers[msg.sender];
        _removeFromList(msg.sender);
        // info.stake is part of _totalVerifierStake.
        unchecked {
            _totalVerifierStake -= info.stake;
        }
        emit VerifierWithdrawn(msg.sender, info.stake);
        _token.safeTransfer(msg.sender, info.stake);
    }

    // --------------------------------------------------------------------- disputes

    /// @inheritdoc IDisputeCourt
    function openDispute(bytes32 jobHash, uint8 hop, Kind kind, bytes32 evidence, uint256 bond)
        external
        nonReentrant
    {
        _open(jobHash, hop, kind, evidence, bond);
    }

    /// @inheritdoc IDisputeCourt
    function openBatchedDispute(
        IBatchSettlement.EntryRef calldata ref,
        IBatchSettlement.BatchedJob calldata job,
        bytes32[] calldata proof,
        uint8 hop,
        Kind kind,
        bytes32 evidence,
        uint256 bond
    ) external nonReentrant {
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        // The batch checks the job is a sound leaf of a live entry inside its window.
        bytes32 jobHash = IBatchSettlement(_market.batches()).lift(ref, job, proof);
        _open(jobHash, hop, kind, evidence, bond);
    }

    // slither-disable-next-line reentrancy-no-eth,reentrancy-benign -- _market is the immutable JobMarket, whose freeze makes no external call
    function _open(bytes32 jobHash, uint8 hop, Kind kind, bytes32 evidence, uint256 bond) private {
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        if (bond < _params.minBond) revert BondBelowMinimum(bond, _params.minBond);
        Dispute storage d = _disputes[jobHash];
        if (d.phase != Phase.None) revert AlreadyDisputed(jobHash);
        // The market checks the job is pending, inside its window, and that the hop exists.
        address[] memory hops = _market.freeze(jobHash, hop);
        d.phase = Phase.Drawing;
        d.kind = kind;
        d.hop = hop;
        d.drawBlock = uint64(block.number + 1);
        d.openedAt = uint64(block.timestamp);
        d.challenger = msg.sender;
        d.accused = hops[hop];
        d.bond = bond;
        d.evidence = evidence;
        _totalHeld += bond;
        emit DisputeOpened(jobHash, msg.sender, d.accused, hop, kind, bond, evidence, d.drawBlock);
        _token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @inheritdoc IDisputeCourt
    function drawJury(bytes32 jobHash) external nonReentrant {
        Dispute storage d = _dispute(jobHash, Phase.Drawing);
        if (block.number <= d.drawBlock) revert DrawNotReady(jobHash, d.drawBlock, block.number);
        bytes32 hash = blockhash(d.drawBlock);
        if (hash == bytes32(0)) {
            // Older than 256 blocks: nobody drew in time. A block after this call draws, so
            // the caller still cannot choose the jury.
            d.drawBlock = uint64(block.number + 1);
            emit DrawDeferred(jobHash, d.drawBlock);
            return;
        }
        uint256 seed = uint256(keccak256(abi.encode(hash, jobHash, d.round)));
        d.phase = Phase.Voting;
        d.commitEndsAt = uint64(block.timestamp) + _params.commitWindow;
        d.revealEndsAt = d.commitEndsAt + _params.revealWindow;
        _seatJury(jobHash, d, seed);
    }

    /// @inheritdoc IDisputeCourt
    function commitVote(bytes32 jobHash, bytes32 commitment) external nonReentrant {
        Dispute storage d = _dispute(jobHash, Phase.Voting);
        Ballot storage ballot = _seatedBallot(jobHash, d);
        if (block.timestamp >= d.commitEndsAt) revert CommitClosed(jobHash, d.commitEndsAt);
        if (ballot.commitment != bytes32(0)) revert AlreadyCommitted(jobHash, msg.sender);
        // Zero marks a ballot as uncommitted: counting it would let the juror commit again.
        if (commitment == bytes32(0)) revert EmptyCommitment(jobHash, msg.sender);
        ballot.commitment = commitment;
        ++d.committed;
        emit VoteCommitted(jobHash, msg.sender);
    }

    /// @inheritdoc IDisputeCourt
    function revealVote(bytes32 jobHash, bool uphold, bytes32 salt) external nonReentrant {
        Dispute storage d = _dispute(jobHash, Phase.Voting);
        Ballot storage ballot = _seatedBallot(jobHash, d);
        if (block.timestamp < d.commitEndsAt && d.committed < d.jurors.length) {
            revert RevealNotOpen(jobHash, d.commitEndsAt);
        }
        if (block.timestamp >= d.revealEndsAt) revert RevealClosed(jobHash, d.revealEndsAt);
        if (ballot.commitment == bytes32(0)) revert NotCommitted(jobHash, msg.sender);
        if (ballot.revealed) revert AlreadyRevealed(jobHash, msg.sender);
        if (_voteCommitment(jobHash, d.round, msg.sender, uphold, salt) != ballot.commitment) {
            revert CommitmentMismatch(jobHash, msg.sender);
        }
        ballot.revealed = true;
        ballot.uphold = uphold;
        ++d.revealed;
        if (uphold) ++d.upholdVotes;
        emit VoteRevealed(jobHash, msg.sender, uphold);
    }

    /// @inheritdoc IDisputeCourt
    // slither-disable-next-line assembly -- trims the memory array of coherent jurors to its count
    function resolve(bytes32 jobHash) external nonReentrant {
        Dispute storage d = _dispute(jobHash, Phase.Voting);
        uint256 seats = d.jurors.length;
        if (seats > 0 && d.revealed < seats && block.timestamp < d.revealEndsAt) {
            revert NotResolvable(jobHash, d.revealEndsAt);
        }
        uint256 reveals = d.revealed;
        if (reveals < seats / 2 + 1) {
            _failRound(jobHash, d);
            return;
        }
        bool upheld = uint256(d.upholdVotes) * 2 > reveals;
        address[] memory coherent = new address[](seats);
        uint256 count = 0;
        uint256 penalty = _params.jurorPenalty;
        for (uint256 i = 0; i < seats; ++i) {
            address juror = d.jurors[i];
            Ballot storage ballot = _ballots[jobHash][juror];
            if (ballot.revealed && ballot.uphold == upheld) {
                coherent[count++] = juror;
                _verifiers[juror].locked -= penalty;
            } else {
                _penalize(jobHash, d, juror, ballot.revealed);
            }
        }
        assembly ("memory-safe") {
            mstore(coherent, count)
        }
        _finish(jobHash, d, upheld, coherent, reveals);
    }

    // ------------------------------------------------------------------------ views

    /// @inheritdoc IDisputeCourt
    function params() external view returns (CourtParams memory) {
        return _params;
    }

    /// @inheritdoc IDisputeCourt
    function getDispute(bytes32 jobHash) external view returns (Dispute memory) {
        return _disputes[jobHash];
    }

    /// @inheritdoc IDisputeCourt
    function getBallot(bytes32 jobHash, address juror) external view returns (Ballot memory) {
        return _ballots[jobHash][juror];
    }

    /// @inheritdoc IDisputeCourt
    function voteCommitment(bytes32 jobHash, uint8 round, address juror, bool uphold, bytes32 salt)
        external
        pure
        returns (bytes32)
    {
        return _voteCommitment(jobHash, round, juror, uphold, salt);
    }

    /// @inheritdoc IDisputeCourt
    function eligibleJurors(bytes32 jobHash, address challenger) external view returns (uint256 count) {
        address[] memory route = _parties(jobHash);
        uint256 n = _verifierList.length;
        for (uint256 i = 0; i < n; ++i) {
            if (_eligible(jobHash, _verifierList[i], challenger, route)) ++count;
        }
    }

    /// @inheritdoc IDisputeCourt
    function verifierStake(address verifier) external view returns (uint256) {
        return _verifiers[verifier].stake;
    }

    /// @inheritdoc IDisputeCourt
    function getVerifier(address verifier) external view returns (VerifierInfo memory) {
        return _verifiers[verifier];
    }

    /// @inheritdoc IDisputeCourt
    function isVerifier(address verifier) external view returns (bool) {
        return _isVerifier(verifier);
    }

    /// @inheritdoc IDisputeCourt
    function verifiers() external view returns (address[] memory) {
        return _verifierList;
    }

    /// @inheritdoc IDisputeCourt
    function totalVerifierStake() external view returns (uint256) {
        return _totalVerifierStake;
    }

    /// @inheritdoc IDisputeCourt
    function totalHeld() external view returns (uint256) {
        return _totalHeld;
    }

    /// @inheritdoc IDisputeCourt
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IDisputeCourt
    function market() external view returns (address) {
        return address(_market);
    }

    // --------------------------------------------------------------------- internal

    function _isVerifier(address account) private view returns (bool) {
        VerifierInfo storage info = _verifiers[account];
        return info.stake > 0 && info.stake >= _params.minVerifierStake && info.unbondingAt == 0;
    }

    /// @dev The job's route nodes and its client: parties to the job, who never judge it.
    function _parties(bytes32 jobHash) private view returns (address[] memory parties) {
        IJobMarket.JobRecord memory rec = _market.getJob(jobHash);
        uint256 hops = rec.hops.length;
        parties = new address[](hops + 1);
        for (uint256 i = 0; i < hops; ++i) {
            parties[i] = rec.hops[i];
        }
        parties[hops] = rec.client;
    }

    /// @dev A juror is an active verifier with a penalty's worth of unlocked stake, neither
    /// the challenger nor a party to the job (a node of its route, its client), that has not
    /// sat on this dispute yet (a redrawn jury is all new).
    function _eligible(bytes32 jobHash, address account, address challenger, address[] memory route)
        private
        view
        returns (bool)
    {
        if (account == challenger || !_isVerifier(account) || _ballots[jobHash][account].seated) return false;
        VerifierInfo storage info = _verifiers[account];
        if (info.stake - info.locked < _params.jurorPenalty) return false;
        for (uint256 i = 0; i < route.length; ++i) {
            if (route[i] == account) return false;
        }
        return true;
    }

    function _dispute(bytes32 jobHash, Phase phase) private view returns (Dispute storage d) {
        d = _disputes[jobHash];
        if (d.phase == Phase.None) revert NoDispute(jobHash);
        if (d.phase != phase) revert WrongPhase(jobHash, d.phase);
    }

    function _seatedBallot(bytes32 jobHash, Dispute storage d) private view returns (Ballot storage ballot) {
        ballot = _ballots[jobHash][msg.sender];
        // Seated in an earlier round is not seated now: a failed round's jurors are done.
        if (!ballot.seated || !_inJury(d, msg.sender)) revert NotJuror(jobHash, msg.sender);
    }

    function _inJury(Dispute storage d, address account) private view returns (bool) {
        uint256 n = d.jurors.length;
        for (uint256 i = 0; i < n; ++i) {
            if (d.jurors[i] == account) return true;
        }
        return false;
    }

    function _voteCommitment(bytes32 jobHash, uint8 round, address juror, bool uphold, bytes32 salt)
        private
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobHash, round, juror, uphold, salt));
    }

    /// @dev Draws up to `jurySize` jurors without replacement, each with probability
    /// proportional to its stake among the eligible ones left. Linear in the number of
    /// verifiers per seat.
    // slither-disable-next-line weak-prng -- the seed is the hash of the block after the dispute opened (docs/CONTRACTS.md)
    function _seatJury(bytes32 jobHash, Dispute storage d, uint256 seed) private {
        (uint256[] memory weights, uint256 total) = _weights(jobHash, d.challenger);
        uint256 seats = _params.jurySize;
        for (uint256 s = 0; s < seats && total > 0; ++s) {
            uint256 target = uint256(keccak256(abi.encode(seed, s))) % total;
            uint256 i = 0;
            uint256 acc = weights[0];
            while (acc <= target) {
                acc += weights[++i];
            }
            total -= weights[i];
            weights[i] = 0;
            _seat(jobHash, d, _verifierList[i]);
        }
    }

    function _weights(bytes32 jobHash, address challenger)
        private
        view
        returns (uint256[] memory weights, uint256 total)
    {
        address[] memory route = _parties(jobHash);
        uint256 n = _verifierList.length;
        weights = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            address account = _verifierList[i];
            if (_eligible(jobHash, account, challenger, route)) {
                weights[i] = _verifiers[account].stake;
                total += weights[i];
            }
        }
    }

    function _seat(bytes32 jobHash, Dispute storage d, address juror) private {
        _verifiers[juror].locked += _params.jurorPenalty;
        _ballots[jobHash][juror] = Ballot({seated: true, revealed: false, uphold: false, commitment: 0});
        d.jurors.push(juror);
        emit JurorDrawn(jobHash, juror, d.round, d.commitEndsAt, d.revealEndsAt);
    }

    /// @dev The juror's locked penalty leaves its stake for the dispute's pot.
    // slither-disable-next-line costly-loop -- called once per juror who did not vote with the verdict, at most jurySize
    function _penalize(bytes32 jobHash, Dispute storage d, address juror, bool revealed) private {
        uint256 penalty = _params.jurorPenalty;
        VerifierInfo storage info = _verifiers[juror];
        // A seated juror's lock is at least `penalty`, and its stake at least its lock.
        info.locked -= penalty;
        info.stake -= penalty;
        _totalVerifierStake -= penalty;
        _totalHeld += penalty;
        d.penalties += penalty;
        emit JurorPenalized(jobHash, juror, penalty, revealed);
    }

    /// @dev Too few reveals for a verdict: the silent jurors are penalised, the others
    /// released; the first time a new jury is drawn, the second time the dispute is rejected.
    function _failRound(bytes32 jobHash, Dispute storage d) private {
        uint256 seats = d.jurors.length;
        uint256 penalty = _params.jurorPenalty;
        for (uint256 i = 0; i < seats; ++i) {
            address juror = d.jurors[i];
            Ballot storage ballot = _ballots[jobHash][juror];
            if (ballot.revealed) {
                _verifiers[juror].locked -= penalty;
            } else {
                _penalize(jobHash, d, juror, false);
            }
        }
        emit RoundFailed(jobHash, d.round, d.revealed);
        if (d.round == 0) {
            d.round = 1;
            d.phase = Phase.Drawing;
            d.drawBlock = uint64(block.number + 1);
            d.committed = 0;
            d.revealed = 0;
            d.upholdVotes = 0;
            delete d.jurors;
            emit DrawDeferred(jobHash, d.drawBlock);
            return;
        }
        _finish(jobHash, d, false, new address[](0), d.revealed);
    }

    /// @dev Pays out a verdict. Upheld: the market overturns the job and sends the bounty
    /// here; the coherent jurors share `jurorShareBps` of it and the penalties, the challenger
    /// gets its bond back and the rest. Rejected: the market releases the job; the coherent
    /// jurors share `jurorShareBps` of the bond and the penalties, the rest of the bond goes
    /// to the accused node (a `Fault` claim) or back to the challenger (`Withholding`).
    /// Whatever no coherent juror can take goes to the market's reward pool.
    // slither-disable-next-line divide-before-multiply,cyclomatic-complexity -- share * count leaves the remainder to the pool as dust; one branch per verdict
    function _finish(bytes32 jobHash, Dispute storage d, bool upheld, address[] memory coherent, uint256 reveals)
        private
    {
        uint256 bond = d.bond;
        _totalHeld -= bond + d.penalties;
        // The verdict is recorded before any call out, so nothing can act on a stale phase.
        d.phase = upheld ? Phase.Upheld : Phase.Rejected;
        uint256 pot = upheld ? _market.overturn(jobHash, d.hop) : bond;
        if (!upheld) _market.release(jobHash);
        uint256 toJurors = pot * _params.jurorShareBps / _BPS;
        uint256 rest = pot - toJurors;
        toJurors += d.penalties;

        uint256 challengerPaid = upheld ? bond + rest : 0;
        uint256 accusedPaid = 0;
        if (!upheld) {
            if (d.kind == Kind.Withholding) challengerPaid = rest;
            else accusedPaid = rest;
        }
        emit DisputeResolved(
            jobHash, upheld, d.upholdVotes, reveals - d.upholdVotes, challengerPaid, accusedPaid
        );

        uint256 count = coherent.length;
        uint256 toPool = toJurors;
        if (count > 0) {
            uint256 share = toJurors / count;
            toPool = toJurors - share * count;
            for (uint256 i = 0; i < count; ++i) {
                emit JurorPaid(jobHash, coherent[i], share);
                if (share > 0) _token.safeTransfer(coherent[i], share);
            }
        }
        if (challengerPaid > 0) _token.safeTransfer(d.challenger, challengerPaid);
        if (accusedPaid > 0) _token.safeTransfer(d.accused, accusedPaid);
        if (toPool > 0) {
            _token.forceApprove(address(_market), toPool);
            _market.fundRewards(toPool);
        }
    }

    function _removeFromList(address account) private {
        uint256 index = _listIndex[account];
        if (index == 0) return;
        uint256 last = _verifierList.length;
        if (index != last) {
            address moved = _verifierList[last - 1];
            _verifierList[index - 1] = moved;
            _listIndex[moved] = index;
        }
        _verifierList.pop();
        delete _listIndex[account];
    }
}
