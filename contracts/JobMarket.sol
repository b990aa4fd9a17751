// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title JobMarket
/// @notice Holds client escrows, locked job payments, verifier stakes and the reward pool.
contract JobMarket is IJobMarket, EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @dev The EIP-712 type string; the Python side signs exactly this.
    bytes32 public constant JOB_TYPEHASH = keccak256(
        "Job(bytes32 modelId,address[] route,uint16[] spanStarts,uint16[] spanEnds,uint32 maxTokens,uint256 maxPricePerToken,uint256 nonce,uint64 deadline,address client)"
    );
    uint256 private constant _BPS = 10_000;

    IERC20 private immutable _token;
    NodeRegistry private immutable _registry;
    MarketParams private _params;

    mapping(address client => uint256) private _escrow;
    mapping(address client => PendingWithdrawal) private _pending;
    mapping(bytes32 jobHash => JobRecord) private _jobs;
    mapping(address verifier => VerifierInfo) private _verifiers;
    mapping(bytes32 jobHash => mapping(address verifier => bool)) private _voted;
    mapping(bytes32 jobHash => mapping(uint8 hop => address[])) private _voters;

    uint256 private _totalEscrow;
    uint256 private _totalLocked;
    uint256 private _totalVerifierStake;
    uint256 private _rewardPool;

    /// @param token_ The payment token; must be the registry's staking token.
    /// @param registry_ The node registry, whose market this contract becomes.
    /// @param params_ Checked so that a client's withdrawal cannot land before a job it
    /// signed must be submitted, and a node cannot leave before its jobs can be challenged.
    constructor(IERC20 token_, NodeRegistry registry_, MarketParams memory params_)
        EIP712("SharedLLM JobMarket", "1")
    {
        if (
            params_.withdrawalDelay <= params_.maxJobTtl || params_.bountyBps > _BPS || params_.quorum == 0
                || address(registry_.token()) != address(token_)
                || registry_.unbondingDelay() <= params_.challengeWindow
        ) revert InvalidParams();
        _token = token_;
        _registry = registry_;
        _params = params_;
    }

    // ----------------------------------------------------------------------- escrow

    /// @inheritdoc IJobMarket
    function deposit(uint256 amount) external nonReentrant {
        _deposit(amount);
    }

    /// @inheritdoc IJobMarket
    /// @dev The permit is tried, not required: anyone can front-run a permit seen in the
    /// mempool, which would otherwise make this call revert although the allowance is set.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        _deposit(amount);
    }

    /// @inheritdoc IJobMarket
    function requestWithdrawal(uint256 amount) external {
        uint256 have = _escrow[msg.sender];
        if (amount > have) revert InsufficientEscrow(msg.sender, have, amount);
        uint64 readyAt = uint64(block.timestamp) + _params.withdrawalDelay;
        _pending[msg.sender] = PendingWithdrawal(amount, readyAt);
        emit WithdrawalRequested(msg.sender, amount, readyAt);
    }

    /// @inheritdoc IJobMarket
    function withdraw() external nonReentrant {
        PendingWithdrawal memory pending = _pending[msg.sender];
        if (pending.readyAt == 0) revert NoPendingWithdrawal(msg.sender);
        if (block.timestamp < pending.readyAt) revert WithdrawalNotReady(msg.sender, block.timestamp, pending.readyAt);
        uint256 have = _escrow[msg.sender];
        uint256 amount = pending.amount < have ? pending.amount : have;
        delete _pending[msg.sender];
        // amount <= have, and _totalEscrow is the sum of all escrows including `have`.
        unchecked {
            _escrow[msg.sender] = have - amount;
            _totalEscrow -= amount;
        }
        emit Withdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------------- jobs

    /// @inheritdoc IJobMarket
    function submitResult(Job calldata job, bytes calldata signature, uint32 tokensServed, bytes32 commitment)
        external
        nonReentrant
    {
        _checkRouteShape(job);
        if (!_inRoute(job.route, msg.sender)) revert NotRouteNode(msg.sender);
        bytes32 jobHash = _hashJob(job);
        if (!SignatureChecker.isValidSignatureNow(job.client, jobHash, signature)) revert InvalidSignature();
        if (block.timestamp > job.deadline) revert JobExpired(job.deadline, block.timestamp);
        JobRecord storage rec = _jobs[jobHash];
        if (rec.status != JobStatus.None) revert JobAlreadySubmitted(jobHash);
        if (tokensServed == 0) revert NoTokensServed();
        if (tokensServed > job.maxTokens) revert TooManyTokens(tokensServed, job.maxTokens);
        uint256 cost = _recordHops(rec, job, tokensServed);
        uint256 have = _escrow[job.client];
        if (have < cost) revert InsufficientEscrow(job.client, have, cost);

        // cost <= have <= _totalEscrow; moving it to _totalLocked keeps the sum constant.
        unchecked {
            _escrow[job.client] = have - cost;
            _totalEscrow -= cost;
        }
        _totalLocked += cost;
        rec.status = JobStatus.Submitted;
        rec.client = job.client;
        rec.submitter = msg.sender;
        rec.submittedAt = uint64(block.timestamp);
        rec.tokensServed = tokensServed;
        rec.commitment = commitment;
        rec.cost = cost;
        emit ResultSubmitted(jobHash, job.client, msg.sender, tokensServed, commitment, cost);
    }

    /// @inheritdoc IJobMarket
    function finalize(bytes32 jobHash) external nonReentrant {
        JobRecord storage rec = _pendingJob(jobHash);
        uint256 endsAt = uint256(rec.submittedAt) + _params.challengeWindow;
        if (block.timestamp < endsAt) revert ChallengeWindowOpen(jobHash, endsAt);

        rec.status = JobStatus.Finalized;
        uint256 cost = rec.cost;
        // cost was added to _totalLocked when the job was submitted.
        unchecked {
            _totalLocked -= cost;
        }
        (uint256[] memory rewards, uint256 reward) = _splitReward(rec);
        // reward <= _rewardPool by construction in _splitReward.
        unchecked {
            _rewardPool -= reward;
        }
        emit JobFinalized(jobHash, cost, reward);

        uint256 hops = rec.hops.length;
        for (uint256 i = 0; i < hops; ++i) {
            address node = rec.hops[i];
            uint256 amount = rec.amounts[i];
            emit HopPaid(jobHash, node, amount, rewards[i]);
            uint256 total = amount + rewards[i];
            if (total > 0) _token.safeTransfer(node, total);
        }
    }

    /// @inheritdoc IJobMarket
    function hashJob(Job calldata job) external view returns (bytes32) {
        return _hashJob(job);
    }

    // -------------------------------------------------------- verifiers, challenges

    /// @inheritdoc IJobMarket
    function stakeVerifier(uint256 amount) external nonReentrant {
        VerifierInfo storage info = _verifiers[msg.sender];
        if (info.unbondingAt != 0) revert VerifierUnbonding(msg.sender);
        uint256 need = _params.minVerifierStake;
        if (info.stake == 0 && (amount < need || amount == 0)) revert StakeBelowMinimum(msg.sender, amount, need);
        info.stake += amount;
        _totalVerifierStake += amount;
        emit VerifierStaked(msg.sender, amount, info.stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IJobMarket
    function requestVerifierUnstake() external {
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        VerifierInfo storage info = _verifiers[msg.sender];
        info.unbondingAt = uint64(block.timestamp) + _params.verifierUnbondingDelay;
        emit VerifierUnstakeRequested(msg.sender, info.stake, info.unbondingAt);
    }

    /// @inheritdoc IJobMarket
    function withdrawVerifierStake() external nonReentrant {
        VerifierInfo memory info = _verifiers[msg.sender];
        if (info.unbondingAt == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < info.unbondingAt) {
            revert UnbondingNotOver(msg.sender, block.timestamp, info.unbondingAt);
        }
        delete _verifiers[msg.sender];
        // info.stake is part of _totalVerifierStake.
        unchecked {
            _totalVerifierStake -= info.stake;
        }
        emit VerifierWithdrawn(msg.sender, info.stake);
        _token.safeTransfer(msg.sender, info.stake);
    }

    /// @inheritdoc IJobMarket
    function challenge(bytes32 jobHash, uint8 hop, bytes32 evidence) external nonReentrant {
        if (!_isVerifier(msg.sender)) revert NotVerifier(msg.sender);
        JobRecord storage rec = _pendingJob(jobHash);
        uint256 endsAt = uint256(rec.submittedAt) + _params.challengeWindow;
        if (block.timestamp >= endsAt) revert ChallengeWindowClosed(jobHash, endsAt);
        if (_voted[jobHash][msg.sender]) revert AlreadyVoted(jobHash, msg.sender);
        if (hop >= rec.hops.length) revert InvalidHop(hop, rec.hops.length);

        _voted[jobHash][msg.sender] = true;
        address[] storage voters = _voters[jobHash][hop];
        voters.push(msg.sender);
        emit ChallengeVoted(jobHash, msg.sender, hop, evidence, voters.length);
        if (voters.length >= _params.quorum) _overturn(jobHash, rec, hop, voters);
    }

    /// @inheritdoc IJobMarket
    function fundRewards(uint256 amount) external nonReentrant {
        _rewardPool += amount;
        emit RewardsFunded(msg.sender, amount, _rewardPool);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    // ------------------------------------------------------------------------ views

    /// @inheritdoc IJobMarket
    function params() external view returns (MarketParams memory) {
        return _params;
    }

    /// @inheritdoc IJobMarket
    function escrowOf(address client) external view returns (uint256) {
        return _escrow[client];
    }

    /// @inheritdoc IJobMarket
    function pendingWithdrawal(address client) external view returns (uint256 amount, uint64 readyAt) {
        PendingWithdrawal memory pending = _pending[client];
        return (pending.amount, pending.readyAt);
    }

    /// @inheritdoc IJobMarket
    function getJob(bytes32 jobHash) external view returns (JobRecord memory) {
        return _jobs[jobHash];
    }

    /// @inheritdoc IJobMarket
    function rewardPool() external view returns (uint256) {
        return _rewardPool;
    }

    /// @inheritdoc IJobMarket
    function verifierStake(address verifier) external view returns (uint256) {
        return _verifiers[verifier].stake;
    }

    /// @inheritdoc IJobMarket
    function getVerifier(address verifier) external view returns (VerifierInfo memory) {
        return _verifiers[verifier];
    }

    /// @inheritdoc IJobMarket
    function isVerifier(address verifier) external view returns (bool) {
        return _isVerifier(verifier);
    }

    /// @inheritdoc IJobMarket
    function totalEscrow() external view returns (uint256) {
        return _totalEscrow;
    }

    /// @inheritdoc IJobMarket
    function totalLocked() external view returns (uint256) {
        return _totalLocked;
    }

    /// @inheritdoc IJobMarket
    function totalVerifierStake() external view returns (uint256) {
        return _totalVerifierStake;
    }

    /// @inheritdoc IJobMarket
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IJobMarket
    function registry() external view returns (address) {
        return address(_registry);
    }

    // --------------------------------------------------------------------- internal

    function _deposit(uint256 amount) private {
        _escrow[msg.sender] += amount;
        _totalEscrow += amount;
        emit Deposited(msg.sender, amount, _escrow[msg.sender]);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _isVerifier(address account) private view returns (bool) {
        VerifierInfo storage info = _verifiers[account];
        return info.stake > 0 && info.stake >= _params.minVerifierStake && info.unbondingAt == 0;
    }

    function _pendingJob(bytes32 jobHash) private view returns (JobRecord storage rec) {
        rec = _jobs[jobHash];
        if (rec.status == JobStatus.None) revert UnknownJob(jobHash);
        if (rec.status != JobStatus.Submitted) revert JobNotPending(jobHash);
    }

    /// @dev Hop indices are uint8 in `challenge`, hence the 255-hop limit.
    function _checkRouteShape(Job calldata job) private pure {
        uint256 hops = job.route.length;
        if (hops == 0 || hops > type(uint8).max || job.spanStarts.length != hops || job.spanEnds.length != hops) {
            revert InvalidRoute();
        }
        uint16 expectedStart = 0;
        for (uint256 i = 0; i < hops; ++i) {
            if (job.spanStarts[i] != expectedStart || job.spanEnds[i] <= expectedStart) revert InvalidRoute();
            expectedStart = job.spanEnds[i];
        }
    }

    function _inRoute(address[] calldata route, address account) private pure returns (bool) {
        for (uint256 i = 0; i < route.length; ++i) {
            if (route[i] == account) return true;
        }
        return false;
    }

    function _hashJob(Job calldata job) private view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                JOB_TYPEHASH,
                job.modelId,
                keccak256(abi.encodePacked(job.route)),
                keccak256(abi.encodePacked(job.spanStarts)),
                keccak256(abi.encodePacked(job.spanEnds)),
                job.maxTokens,
                job.maxPricePerToken,
                job.nonce,
                job.deadline,
                job.client
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @dev Check 6 of `submitResult`: every hop is active and serves the job's model, span
    /// and price cap. Stores each hop's amount and returns the job's cost.
    function _recordHops(JobRecord storage rec, Job calldata job, uint32 tokensServed)
        private
        returns (uint256 cost)
    {
        uint256 hops = job.route.length;
        for (uint256 i = 0; i < hops; ++i) {
            address hop = job.route[i];
            INodeRegistry.Node memory node = _registry.getNode(hop);
            if (node.status != INodeRegistry.NodeStatus.Active) revert NodeNotActive(hop);
            if (node.modelId != job.modelId) revert ModelMismatch(hop, job.modelId, node.modelId);
            if (node.start != job.spanStarts[i] || node.end != job.spanEnds[i]) {
                revert SpanMismatch(hop, job.spanStarts[i], job.spanEnds[i]);
            }
            if (node.pricePerToken > job.maxPricePerToken) {
                revert PriceAboveCap(hop, node.pricePerToken, job.maxPricePerToken);
            }
            uint16 layers = node.end - node.start;
            uint256 amount = uint256(tokensServed) * layers * node.pricePerToken;
            rec.hops.push(hop);
            rec.layers.push(layers);
            rec.amounts.push(amount);
            cost += amount;
        }
    }

    /// @dev The reward is `rewardPerToken * tokensServed`, capped by the pool and split by
    /// layers served; rounding dust stays in the pool.
    function _splitReward(JobRecord storage rec) private view returns (uint256[] memory rewards, uint256 paid) {
        uint256 hops = rec.hops.length;
        rewards = new uint256[](hops);
        uint256 target = _params.rewardPerToken * rec.tokensServed;
        if (target > _rewardPool) target = _rewardPool;
        if (target == 0) return (rewards, 0);
        uint256 totalLayers = 0;
        for (uint256 i = 0; i < hops; ++i) {
            totalLayers += rec.layers[i];
        }
        for (uint256 i = 0; i < hops; ++i) {
            rewards[i] = target * rec.layers[i] / totalLayers;
            paid += rewards[i];
        }
    }

    /// @dev Quorum reached: refund the client, slash the hop, pay the voters their bounty.
    function _overturn(bytes32 jobHash, JobRecord storage rec, uint8 hop, address[] storage voters) private {
        rec.status = JobStatus.Challenged;
        uint256 cost = rec.cost;
        // cost was added to _totalLocked when the job was submitted.
        unchecked {
            _totalLocked -= cost;
        }
        _escrow[rec.client] += cost;
        _totalEscrow += cost;

        address node = rec.hops[hop];
        // The registry is trusted (fixed at deployment) and sends the slashed stake here.
        uint256 slashed = _registry.slash(node, _params.slashAmount, address(this));
        uint256 count = voters.length;
        uint256 share = slashed * _params.bountyBps / _BPS / count;
        uint256 bounty = share * count;
        // bounty <= slashed * bountyBps / 10_000 <= slashed.
        unchecked {
            _rewardPool += slashed - bounty;
        }
        emit JobChallenged(jobHash, node, hop, slashed, bounty);
        if (share == 0) return;
        for (uint256 i = 0; i < count; ++i) {
            _token.safeTransfer(voters[i], share);
        }
    }
}
