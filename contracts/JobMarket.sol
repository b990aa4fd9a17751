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
/// @notice Holds client escrows, locked job payments and the reward pool; settles jobs, and
/// overturns them on an over-charge proof or the court's verdict.
contract JobMarket is IJobMarket, EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @dev The EIP-712 type string; the Python side signs exactly this.
    bytes32 public constant JOB_TYPEHASH = keccak256(
        "Job(bytes32 modelId,address[] route,uint16[] spanStarts,uint16[] spanEnds,uint32 maxTokens,uint256 maxPricePerToken,uint256 nonce,uint64 deadline,address client)"
    );
    /// @dev A client's change of a hop mid-answer; see `Amendment` in the interface.
    bytes32 public constant AMENDMENT_TYPEHASH =
        keccak256("Amendment(bytes32 jobHash,uint8 hop,address replacement,uint32 fromPosition)");
    /// @dev A job replaces at most this many hops (each replacement is one more payee).
    uint256 public constant MAX_AMENDMENTS = 16;
    uint256 private constant _BPS = 10_000;
    /// @dev A receipt as hops sign it: job id, hop, step, first position, positions,
    /// input hash, output hash (big-endian; 109 bytes), then the 64-byte ed25519 signature.
    uint256 private constant _RECEIPT_BYTES = 173;
    bytes private constant _COMMITMENT_DOMAIN = "sharedllm/commitment/v1";

    IERC20 private immutable _token;
    NodeRegistry private immutable _registry;
    uint64 private immutable _unbondingDelay; // the registry's, read once
    uint64 private immutable _termsLock; // the registry's, read once
    address private immutable _deployer;
    address private _court;
    address private _batches;
    MarketParams private _params;

    mapping(address client => uint256) private _escrow;
    mapping(address client => PendingWithdrawal) private _pending;
    mapping(bytes32 jobHash => JobRecord) private _jobs;
    /// @dev Amended jobs only: the positions each record hop is owed, and how many of the
    /// record's hops are replacements (the route's come first).
    // slither-disable-next-line uninitialized-state -- written through storage references in _recordAmendments
    mapping(bytes32 jobHash => uint32[]) private _served;
    mapping(bytes32 jobHash => uint256) private _replacements;

    uint256 private _totalEscrow;
    uint256 private _totalLocked;
    uint256 private _totalBatched;
    uint256 private _rewardPool;

    modifier onlyCourt() {
        if (msg.sender != _court || msg.sender == address(0)) revert NotCourt(msg.sender);
        _;
    }

    modifier onlyBatches() {
        if (msg.sender != _batches || msg.sender == address(0)) revert NotBatches(msg.sender);
        _;
    }

    /// @param token_ The payment token; must be the registry's staking token.
    /// @param registry_ The node registry, whose market this contract becomes.
    /// @param params_ Checked so that a client's withdrawal cannot land before a job it
    /// signed must be submitted, a node's terms cannot change twice within one job, and a
    /// node that asked to leave cannot leave before the jobs it was sent first (paid until
    /// the registry's `termsLock` after it asked) can be challenged.
    constructor(IERC20 token_, NodeRegistry registry_, MarketParams memory params_)
        EIP712("SharedLLM JobMarket", "1")
    {
        uint64 unbonding = registry_.unbondingDelay();
        uint64 lock = registry_.termsLock();
        if (
            params_.withdrawalDelay <= params_.maxJobTtl || params_.bountyBps > _BPS
                || address(registry_.token()) != address(token_) || lock < params_.maxJobTtl
                || unbonding <= uint256(lock) + params_.challengeWindow
        ) revert InvalidParams();
        _token = token_;
        _registry = registry_;
        _unbondingDelay = unbonding;
        _termsLock = lock;
        _deployer = msg.sender;
        _params = params_;
    }

    /// @inheritdoc IJobMarket
    function setCourt(address court_) external {
        if (msg.sender != _deployer || _court != address(0) || court_ == address(0)) revert CourtAlreadySet();
        _court = court_;
        emit CourtSet(court_);
    }

    /// @inheritdoc IJobMarket
    function setBatches(address batches_) external {
        if (msg.sender != _deployer || _batches != address(0) || batches_ == address(0)) revert BatchesAlreadySet();
        _batches = batches_;
        emit BatchesSet(batches_);
    }

    // ----------------------------------------------------------------------- escrow

    /// @inheritdoc IJobMarket
    function deposit(uint256 amount) external nonReentrant {
        _deposit(amount);
    }

    /// @inheritdoc IJobMarket
    /// @dev The permit is tried, not required: anyone can front-run a permit seen in the
    /// mempool, which would otherwise make this call revert although the allowance is set.
    // slither-disable-next-line reentrancy-benign -- a token calling back from permit can only deposit for itself; the deposit follows either way
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
        (bytes32 jobHash, JobRecord storage rec) = _newJob(job, signature, tokensServed);
        uint256 cost = _recordHops(rec, job, tokensServed);
        _lock(jobHash, rec, job.client, tokensServed, commitment, cost);
    }

    /// @inheritdoc IJobMarket
    function submitAmended(
        Job calldata job,
        bytes calldata signature,
        Amendment[] calldata amendments,
        bytes[] calldata amendmentSignatures,
        uint32 tokensServed,
        bytes32 commitment
    ) external nonReentrant {
        uint256 count = amendments.length;
        if (count == 0 || count > MAX_AMENDMENTS || amendmentSignatures.length != count) {
            revert InvalidAmendment(count);
        }
        _checkRouteShape(job);
        if (!_inRoute(job.route, msg.sender) && !_isReplacement(amendments, msg.sender)) {
            revert NotRouteNode(msg.sender);
        }
        (bytes32 jobHash, JobRecord storage rec) = _newJob(job, signature, tokensServed);
        _recordHops(rec, job, tokensServed);
        uint256 cost = _recordAmendments(jobHash, rec, job, amendments, amendmentSignatures, tokensServed);
        _lock(jobHash, rec, job.client, tokensServed, commitment, cost);
    }

    /// @inheritdoc IJobMarket
    function finalize(bytes32 jobHash) external nonReentrant {
        if (_jobs[jobHash].status == JobStatus.Disputed) revert JobUnderDispute(jobHash);
        JobRecord storage rec = _pendingJob(jobHash);
        uint256 endsAt = _windowEnd(rec);
        if (block.timestamp < endsAt) revert ChallengeWindowOpen(jobHash, endsAt);

        rec.status = JobStatus.Finalized;
        uint256 cost = rec.cost;
        // cost was added to _totalLocked when the job was submitted.
        unchecked {
            _totalLocked -= cost;
        }
        (uint256[] memory rewards, uint256 reward) = _splitReward(jobHash, rec);
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

    /// @inheritdoc IJobMarket
    function hashAmendment(bytes32 jobHash, Amendment calldata amendment) external view returns (bytes32) {
        return _hashAmendment(jobHash, amendment);
    }

    /// @inheritdoc IJobMarket
    function replacementsOf(bytes32 jobHash) external view returns (uint256) {
        return _replacements[jobHash];
    }

    // ------------------------------------------------------------------- disputes

    /// @inheritdoc IJobMarket
    function proveOvercharge(bytes32 jobHash, bytes calldata receipts) external nonReentrant {
        _proveOvercharge(jobHash, receipts, msg.sender);
    }

    /// @inheritdoc IJobMarket
    function provenPositions(bytes32 jobHash, uint256 hops, bytes calldata receipts)
        external
        pure
        returns (uint32 proven, bytes32 commitment)
    {
        return _provenPositions(jobHash, hops, receipts);
    }

    /// @inheritdoc IJobMarket
    function freeze(bytes32 jobHash, uint8 hop) external onlyCourt returns (address[] memory) {
        JobRecord storage rec = _pendingJob(jobHash);
        _requireWindowOpen(jobHash, rec);
        if (hop >= rec.hops.length) revert InvalidHop(hop, rec.hops.length);
        rec.status = JobStatus.Disputed;
        emit JobDisputed(jobHash, hop);
        return rec.hops;
    }

    /// @inheritdoc IJobMarket
    function release(bytes32 jobHash) external onlyCourt {
        JobRecord storage rec = _disputedJob(jobHash);
        rec.status = JobStatus.Submitted;
        rec.releasedAt = uint64(block.timestamp);
        emit JobReleased(jobHash);
    }

    /// @inheritdoc IJobMarket
    function overturn(bytes32 jobHash, uint8 hop) external onlyCourt nonReentrant returns (uint256) {
        JobRecord storage rec = _disputedJob(jobHash);
        return _overturn(jobHash, rec, hop, msg.sender);
    }

    // -------------------------------------------------------------------- batches

    /// @inheritdoc IJobMarket
    function debitBatch(address[] calldata clients, uint256[] calldata debits)
        external
        onlyBatches
        returns (uint256 unfunded, uint256 total)
    {
        uint256 n = clients.length;
        for (uint256 i = 0; i < n; ++i) {
            address client = clients[i];
            uint256 have = _escrow[client];
            uint256 debit = debits[i];
            if (have < debit) {
                unfunded |= 1 << i;
                continue;
            }
            // debit <= have <= _totalEscrow.
            unchecked {
                _escrow[client] = have - debit;
            }
            total += debit;
        }
        unchecked {
            _totalEscrow -= total;
        }
        _totalBatched += total;
    }

    /// @inheritdoc IJobMarket
    // slither-disable-next-line events-maths -- BatchSettlement emits the batch's payouts (NodePaid, BatchFinalized)
    function payBatch(address[] calldata nodes, uint256[] calldata amounts, uint256[] calldata rewards)
        external
        onlyBatches
        nonReentrant
        returns (uint256[] memory paidRewards)
    {
        uint256 n = nodes.length;
        uint256 paid = 0;
        uint256 wanted = 0;
        for (uint256 i = 0; i < n; ++i) {
            paid += amounts[i];
            wanted += rewards[i];
        }
        // The batch contract pays at most what it holds; a bug there must not reach escrows.
        if (paid > _totalBatched) revert InsufficientEscrow(msg.sender, _totalBatched, paid);
        unchecked {
            _totalBatched -= paid;
        }
        uint256 pool = _rewardPool;
        paidRewards = new uint256[](n);
        uint256 given = 0;
        for (uint256 i = 0; i < n; ++i) {
            paidRewards[i] = wanted <= pool ? rewards[i] : rewards[i] * pool / wanted;
            given += paidRewards[i];
        }
        // given <= pool: each share is scaled by pool / wanted when the pool is short.
        unchecked {
            _rewardPool = pool - given;
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 total = amounts[i] + paidRewards[i];
            if (total > 0) _token.safeTransfer(nodes[i], total);
        }
    }

    /// @inheritdoc IJobMarket
    // slither-disable-next-line events-maths -- BatchSettlement emits the voided entry's refund (EntryVoided)
    function refundBatched(address client, uint256 amount, address poster, address bountyTo)
        external
        onlyBatches
        nonReentrant
        returns (uint256 slashed)
    {
        _totalBatched -= amount;
        _escrow[client] += amount;
        _totalEscrow += amount;
        (slashed,) = _slashForBounty(poster, bountyTo);
    }

    /// @inheritdoc IJobMarket
    function adoptJob(bytes32 jobHash, JobRecord calldata record) external onlyBatches {
        JobRecord storage rec = _jobs[jobHash];
        if (rec.status != JobStatus.None) revert JobAlreadySubmitted(jobHash);
        _totalBatched -= record.cost;
        _totalLocked += record.cost;
        rec.status = JobStatus.Submitted;
        rec.client = record.client;
        rec.submitter = record.submitter;
        rec.submittedAt = record.submittedAt;
        rec.tokensServed = record.tokensServed;
        rec.commitment = record.commitment;
        rec.cost = record.cost;
        rec.hops = record.hops;
        rec.layers = record.layers;
        rec.amounts = record.amounts;
        emit ResultSubmitted(jobHash, record.client, record.submitter, record.tokensServed, record.commitment, record.cost);
    }

    /// @inheritdoc IJobMarket
    function overturnResubmitted(bytes32 jobHash, address prover) external onlyBatches nonReentrant {
        JobRecord storage rec = _pendingJob(jobHash);
        _requireWindowOpen(jobHash, rec);
        rec.status = JobStatus.Challenged;
        uint256 cost = rec.cost;
        // cost was added to _totalLocked when the job was submitted.
        unchecked {
            _totalLocked -= cost;
        }
        _escrow[rec.client] += cost;
        _totalEscrow += cost;
        (uint256 slashed, uint256 bounty) = _slashForBounty(rec.submitter, prover);
        emit ResubmissionOverturned(jobHash, rec.submitter, slashed, bounty);
    }

    /// @inheritdoc IJobMarket
    function proveOverchargeFor(bytes32 jobHash, bytes calldata receipts, address prover)
        external
        onlyBatches
        nonReentrant
    {
        _proveOvercharge(jobHash, receipts, prover);
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
    function hopsOf(bytes32 jobHash) external view returns (address[] memory) {
        return _jobs[jobHash].hops;
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
    function totalBatched() external view returns (uint256) {
        return _totalBatched;
    }

    /// @inheritdoc IJobMarket
    function batches() external view returns (address) {
        return _batches;
    }

    /// @inheritdoc IJobMarket
    function token() external view returns (IERC20) {
        return _token;
    }

    /// @inheritdoc IJobMarket
    function registry() external view returns (address) {
        return address(_registry);
    }

    /// @inheritdoc IJobMarket
    function court() external view returns (address) {
        return _court;
    }

    // --------------------------------------------------------------------- internal

    function _deposit(uint256 amount) private {
        _escrow[msg.sender] += amount;
        _totalEscrow += amount;
        emit Deposited(msg.sender, amount, _escrow[msg.sender]);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _proveOvercharge(bytes32 jobHash, bytes calldata receipts, address prover) private {
        JobRecord storage rec = _pendingJob(jobHash);
        _requireWindowOpen(jobHash, rec);
        uint256 routeHops = rec.hops.length - _replacements[jobHash];
        (uint32 proven, bytes32 commitment) = _provenPositions(jobHash, routeHops, receipts);
        if (commitment != rec.commitment) revert ReceiptsMismatch(jobHash);
        if (proven >= rec.tokensServed) revert NoOvercharge(proven, rec.tokensServed);
        emit OverchargeProven(jobHash, prover, proven, rec.tokensServed);
        _overturn(jobHash, rec, _hopIndex(rec, rec.submitter), prover);
    }

    /// @dev Slashes `node` for bookkeeping it cannot stand behind: `bountyBps` of the slash
    /// to `bountyTo`, the rest to the reward pool.
    // slither-disable-next-line reentrancy-benign -- _registry is the immutable NodeRegistry; slash moves stake with the market's token only
    function _slashForBounty(address node, address bountyTo) private returns (uint256 slashed, uint256 bounty) {
        // The registry is trusted (fixed at deployment) and sends the slashed stake here.
        slashed = _registry.slash(node, _params.slashAmount, address(this));
        bounty = slashed * _params.bountyBps / _BPS;
        // bounty <= slashed.
        unchecked {
            _rewardPool += slashed - bounty;
        }
        if (bounty > 0) _token.safeTransfer(bountyTo, bounty);
    }

    function _pendingJob(bytes32 jobHash) private view returns (JobRecord storage rec) {
        rec = _jobs[jobHash];
        if (rec.status == JobStatus.None) revert UnknownJob(jobHash);
        if (rec.status != JobStatus.Submitted) revert JobNotPending(jobHash);
    }

    function _disputedJob(bytes32 jobHash) private view returns (JobRecord storage rec) {
        rec = _jobs[jobHash];
        if (rec.status == JobStatus.None) revert UnknownJob(jobHash);
        if (rec.status != JobStatus.Disputed) revert JobNotPending(jobHash);
    }

    function _windowEnd(JobRecord storage rec) private view returns (uint256) {
        uint256 from = rec.releasedAt > rec.submittedAt ? rec.releasedAt : rec.submittedAt;
        return from + _params.challengeWindow;
    }

    function _requireWindowOpen(bytes32 jobHash, JobRecord storage rec) private view {
        uint256 endsAt = _windowEnd(rec);
        if (block.timestamp >= endsAt) revert ChallengeWindowClosed(jobHash, endsAt);
    }

    function _hopIndex(JobRecord storage rec, address node) private view returns (uint8) {
        uint256 hops = rec.hops.length;
        for (uint256 i = 0; i < hops; ++i) {
            if (rec.hops[i] == node) return uint8(i);
        }
        // The submitter is a route node (checked in submitResult).
        revert NotRouteNode(node);
    }

    /// @dev Hop indices are uint8 in disputes and receipts, hence the 255-hop limit.
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

    /// @dev Checks 3-5 of `submitResult` (the caller checked the route's shape and the
    /// submitter): the client's signature, the deadline, no earlier record, the tokens served.
    function _newJob(Job calldata job, bytes calldata signature, uint32 tokensServed)
        private
        view
        returns (bytes32 jobHash, JobRecord storage rec)
    {
        jobHash = _hashJob(job);
        if (!SignatureChecker.isValidSignatureNow(job.client, jobHash, signature)) revert InvalidSignature();
        if (block.timestamp > job.deadline) revert JobExpired(job.deadline, block.timestamp);
        rec = _jobs[jobHash];
        if (rec.status != JobStatus.None) revert JobAlreadySubmitted(jobHash);
        if (tokensServed == 0) revert NoTokensServed();
        if (tokensServed > job.maxTokens) revert TooManyTokens(tokensServed, job.maxTokens);
    }

    /// @dev Check 7: the client's escrow covers the cost, which moves from escrow to locked.
    function _lock(
        bytes32 jobHash,
        JobRecord storage rec,
        address client,
        uint32 tokensServed,
        bytes32 commitment,
        uint256 cost
    ) private {
        uint256 have = _escrow[client];
        if (have < cost) revert InsufficientEscrow(client, have, cost);
        // cost <= have <= _totalEscrow; moving it to _totalLocked keeps the sum constant.
        unchecked {
            _escrow[client] = have - cost;
            _totalEscrow -= cost;
        }
        _totalLocked += cost;
        rec.status = JobStatus.Submitted;
        rec.client = client;
        rec.submitter = msg.sender;
        rec.submittedAt = uint64(block.timestamp);
        rec.tokensServed = tokensServed;
        rec.commitment = commitment;
        rec.cost = cost;
        emit ResultSubmitted(jobHash, client, msg.sender, tokensServed, commitment, cost);
    }

    /// @dev Check 6 of `submitResult`: every hop is active and serves the job's model, its
    /// layers (inside the hop's registered span) and price cap. Stores each hop's amount and returns the job's cost.
    function _recordHops(JobRecord storage rec, Job calldata job, uint32 tokensServed)
        private
        returns (uint256 cost)
    {
        uint256 hops = job.route.length;
        for (uint256 i = 0; i < hops; ++i) {
            cost += _recordHop(rec, job, i, job.route[i], tokensServed);
        }
    }

    /// @dev Check 6 for one node serving route hop `i` for `positions` positions.
    // slither-disable-next-line calls-loop -- _registry is the immutable NodeRegistry; the loop is over the job's route
    function _recordHop(JobRecord storage rec, Job calldata job, uint256 i, address hop, uint32 positions)
        private
        returns (uint256 amount)
    {
        INodeRegistry.Node memory node = _registry.getNode(hop);
        // A node that asked to leave is still paid for a job it may have been sent before
        // it asked (one whose deadline is at most that plus the terms lock, longer than any
        // job): its stake stays slashable past that job's challenge window.
        if (
            node.status != INodeRegistry.NodeStatus.Active
                && !(node.status == INodeRegistry.NodeStatus.Unbonding
                    && job.deadline <= uint256(node.unbondingAt) - _unbondingDelay + _termsLock)
        ) revert NodeNotActive(hop);
        uint256 price = _termsPrice(job, i, hop, node);
        uint16 layers = job.spanEnds[i] - job.spanStarts[i];
        amount = uint256(positions) * layers * price;
        rec.hops.push(hop);
        rec.layers.push(layers);
        rec.amounts.push(amount);
    }

    /// @dev The price hop `i` is paid at: its registered terms', if the job fits them (the
    /// model, its layers inside the span, the price under the cap: a hop may run any
    /// contiguous part of its span, and is paid for that part); else, for a job that may
    /// have been sent before the node last changed its terms (its deadline is at most that
    /// change plus the longest job), the terms it had then, if the job fits those.
    /// Otherwise the current terms' refusal.
    // slither-disable-next-line calls-loop -- _registry is the immutable NodeRegistry; the loop is over the job's route
    function _termsPrice(Job calldata job, uint256 i, address hop, INodeRegistry.Node memory node)
        private
        view
        returns (uint256)
    {
        if (_fits(job, i, node.modelId, node.start, node.end, node.pricePerToken)) return node.pricePerToken;
        (INodeRegistry.Terms memory prior, uint64 changedAt) = _registry.priorTerms(hop);
        if (
            changedAt != 0 && job.deadline <= uint256(changedAt) + _params.maxJobTtl
                && _fits(job, i, prior.modelId, prior.start, prior.end, prior.pricePerToken)
        ) return prior.pricePerToken;
        if (node.modelId != job.modelId) revert ModelMismatch(hop, job.modelId, node.modelId);
        if (job.spanStarts[i] < node.start || job.spanEnds[i] > node.end) {
            revert SpanMismatch(hop, job.spanStarts[i], job.spanEnds[i]);
        }
        revert PriceAboveCap(hop, node.pricePerToken, job.maxPricePerToken);
    }

    function _fits(Job calldata job, uint256 i, bytes32 modelId, uint16 start, uint16 end, uint256 price)
        private
        pure
        returns (bool)
    {
        return modelId == job.modelId && start <= job.spanStarts[i] && job.spanEnds[i] <= end
            && price <= job.maxPricePerToken;
    }

    /// @dev Applies the amendments in order: each cuts the hop's current holder down to the
    /// positions before `fromPosition` and appends the replacement, owed every position
    /// (the replay of the earlier ones included) until a later amendment cuts it in turn.
    /// Returns the job's cost after them.
    function _recordAmendments(
        bytes32 jobHash,
        JobRecord storage rec,
        Job calldata job,
        Amendment[] calldata amendments,
        bytes[] calldata signatures,
        uint32 tokensServed
    ) private returns (uint256 cost) {
        uint32[] storage served = _served[jobHash];
        for (uint256 i = 0; i < job.route.length; ++i) {
            served.push(tokensServed);
        }
        uint256 holder = 0;
        for (uint256 j = 0; j < amendments.length; ++j) {
            holder = _holderBefore(rec, amendments, j, holder, job.route.length, tokensServed);
            if (!SignatureChecker.isValidSignatureNow(
                    job.client, _hashAmendment(jobHash, amendments[j]), signatures[j]
                )) {
                revert InvalidAmendmentSignature(j);
            }
            holder = _replace(jobHash, rec, job, amendments[j], holder, tokensServed);
        }
        _replacements[jobHash] = amendments.length;
        uint256 entries = rec.amounts.length;
        for (uint256 i = 0; i < entries; ++i) {
            cost += rec.amounts[i];
        }
    }

    /// @dev Cuts record hop `holder` down to the positions before the amendment and appends
    /// the replacement; returns the replacement's record index.
    // slither-disable-next-line divide-before-multiply -- amounts[holder] is tokensServed * layers * price, so the division is exact
    function _replace(
        bytes32 jobHash,
        JobRecord storage rec,
        Job calldata job,
        Amendment calldata a,
        uint256 holder,
        uint32 tokensServed
    ) private returns (uint256 index) {
        // amounts[holder] is tokensServed * layers * price, so the division is exact.
        rec.amounts[holder] = rec.amounts[holder] / tokensServed * a.fromPosition;
        uint32[] storage served = _served[jobHash];
        served[holder] = a.fromPosition;
        _recordHop(rec, job, a.hop, a.replacement, tokensServed);
        served.push(tokensServed);
        index = rec.hops.length - 1;
        emit JobAmended(jobHash, a.hop, a.replacement, a.fromPosition, uint8(index));
    }

    /// @dev Checks amendment `j` and returns the record index of the node it replaces:
    /// the route's hop for a hop's first amendment, else the previous replacement.
    function _holderBefore(
        JobRecord storage rec,
        Amendment[] calldata amendments,
        uint256 j,
        uint256 holder,
        uint256 hops,
        uint32 tokensServed
    ) private view returns (uint256) {
        Amendment calldata a = amendments[j];
        // Record indices are uint8 in disputes, as hop indices are.
        if (a.hop >= hops || a.fromPosition > tokensServed || hops + j > type(uint8).max) {
            revert InvalidAmendment(j);
        }
        uint256 entries = rec.hops.length;
        for (uint256 i = 0; i < entries; ++i) {
            if (rec.hops[i] == a.replacement) revert InvalidAmendment(j);
        }
        if (j == 0 || a.hop != amendments[j - 1].hop) {
            if (j > 0 && a.hop < amendments[j - 1].hop) revert InvalidAmendment(j);
            return a.hop;
        }
        if (a.fromPosition <= amendments[j - 1].fromPosition) revert InvalidAmendment(j);
        return holder;
    }

    function _isReplacement(Amendment[] calldata amendments, address account) private pure returns (bool) {
        for (uint256 j = 0; j < amendments.length; ++j) {
            if (amendments[j].replacement == account) return true;
        }
        return false;
    }

    function _hashAmendment(bytes32 jobHash, Amendment calldata a) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(AMENDMENT_TYPEHASH, jobHash, a.hop, a.replacement, a.fromPosition))
        );
    }

    /// @dev The reward is `rewardPerToken * tokensServed`, capped by the pool and split by
    /// layer-positions served (by layers alone when every hop served every position);
    /// rounding dust stays in the pool.
    function _splitReward(bytes32 jobHash, JobRecord storage rec)
        private
        view
        returns (uint256[] memory rewards, uint256 paid)
    {
        uint256 hops = rec.hops.length;
        rewards = new uint256[](hops);
        uint256 target = _params.rewardPerToken * rec.tokensServed;
        if (target > _rewardPool) target = _rewardPool;
        if (target == 0) return (rewards, 0);
        uint32[] storage served = _served[jobHash];
        bool amended = served.length != 0;
        uint256[] memory weights = new uint256[](hops);
        uint256 total = 0;
        for (uint256 i = 0; i < hops; ++i) {
            weights[i] = uint256(rec.layers[i]) * (amended ? served[i] : 1);
            total += weights[i];
        }
        for (uint256 i = 0; i < hops; ++i) {
            rewards[i] = target * weights[i] / total;
            paid += rewards[i];
        }
    }

    function _provenPositions(bytes32 jobHash, uint256 hops, bytes calldata receipts)
        private
        pure
        returns (uint32 proven, bytes32 commitment)
    {
        if (receipts.length % _RECEIPT_BYTES != 0) revert ReceiptsMalformed(receipts.length);
        commitment = _commitmentOf(receipts);
        uint256 position = hops == 0 ? 0 : _walk(jobHash, hops, receipts);
        proven = position > type(uint32).max ? type(uint32).max : uint32(position);
    }

    /// @dev `sha256(domain ‖ sha256(receipt) ‖ …)`, as `job_commitment` hashes them.
    function _commitmentOf(bytes calldata receipts) private pure returns (bytes32) {
        uint256 count = receipts.length / _RECEIPT_BYTES;
        bytes32[] memory digests = new bytes32[](count);
        for (uint256 k = 0; k < count; ++k) {
            digests[k] = sha256(receipts[k * _RECEIPT_BYTES:(k + 1) * _RECEIPT_BYTES]);
        }
        return sha256(abi.encodePacked(_COMMITMENT_DOMAIN, digests));
    }

    /// @dev Walks the receipts in (step, hop) order: each step needs one receipt per hop, for
    /// this job, over the same positions, starting where the last step ended, each hop's
    /// input hash the previous hop's output hash, steps numbered upwards. The walk stops at
    /// the first receipt that breaks any of this; the positions of the steps before it are
    /// proven. Signatures are not checked: the submitter committed to these bytes, so
    /// whatever they fail to prove is the submitter's fault.
    function _walk(bytes32 jobHash, uint256 hops, bytes calldata receipts) private pure returns (uint256 proven) {
        uint256 count = receipts.length / _RECEIPT_BYTES;
        // slither-disable-next-line uninitialized-local -- the walk starts from an all-zero step
        _Step memory last;
        for (uint256 k = 0; k < count; ++k) {
            _Step memory r = _parse(receipts[k * _RECEIPT_BYTES:(k + 1) * _RECEIPT_BYTES]);
            uint256 hop = k % hops;
            if (r.jobHash != jobHash || r.hop != hop) break;
            if (hop == 0) {
                // A step number above the last one (any, for the first step).
                if (r.positions == 0 || r.start != proven || (k > 0 && r.step <= last.step)) break;
            } else if (
                r.step != last.step || r.start != last.start || r.positions != last.positions
                    || r.input != last.output
            ) {
                break;
            }
            last = r;
            // A step proves its positions once its last hop is in.
            if (hop == hops - 1) proven = r.start + r.positions;
        }
    }

    /// @dev The fields of one receipt that the walk reads.
    // slither-disable-next-line naming-convention -- private structs take a leading underscore, as private functions do
    struct _Step {
        bytes32 jobHash;
        uint256 hop;
        uint256 step;
        uint256 start;
        uint256 positions;
        bytes32 input;
        bytes32 output;
    }

    function _parse(bytes calldata r) private pure returns (_Step memory p) {
        p.jobHash = bytes32(r[0:32]);
        p.hop = uint8(r[32]);
        p.step = uint32(bytes4(r[33:37]));
        p.start = uint32(bytes4(r[37:41]));
        p.positions = uint32(bytes4(r[41:45]));
        p.input = bytes32(r[45:77]);
        p.output = bytes32(r[77:109]);
    }

    /// @dev A fault is proven at `hop`: refund the client in full, slash the hop, pay every
    /// other hop what it was owed out of the slash (their work was honest), send
    /// `bountyBps` of what is left to `bountyTo` (the prover, or the court for its jury), and
    /// the rest to the reward pool.
    // slither-disable-next-line reentrancy-benign -- _registry is the immutable NodeRegistry; slash moves stake with the market's token only
    function _overturn(bytes32 jobHash, JobRecord storage rec, uint8 hop, address bountyTo)
        private
        returns (uint256 bounty)
    {
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
        uint256 left = slashed;
        uint256 hops = rec.hops.length;
        uint256[] memory pay = new uint256[](hops);
        for (uint256 i = 0; i < hops && left > 0; ++i) {
            if (rec.hops[i] == node) continue;
            pay[i] = rec.amounts[i] < left ? rec.amounts[i] : left;
            left -= pay[i];
        }
        bounty = left * _params.bountyBps / _BPS;
        // bounty <= left <= slashed.
        unchecked {
            _rewardPool += left - bounty;
        }
        emit JobChallenged(jobHash, node, hop, slashed, bounty);
        for (uint256 i = 0; i < hops; ++i) {
            if (pay[i] == 0) continue;
            emit HopCompensated(jobHash, rec.hops[i], pay[i]);
            _token.safeTransfer(rec.hops[i], pay[i]);
        }
        if (bounty > 0) _token.safeTransfer(bountyTo, bounty);
    }
}
