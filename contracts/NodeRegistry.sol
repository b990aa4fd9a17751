// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title NodeRegistry
/// @notice Holds node stakes (active and unbonding) and what each node serves.
contract NodeRegistry is INodeRegistry, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 private constant _MAX_ENDPOINT_BYTES = 256;

    IERC20 private immutable _token;
    uint256 private immutable _minStake;
    uint64 private immutable _unbondingDelay;
    uint64 private immutable _termsLock;

    address private _market;
    mapping(address node => Node) private _nodes;
    address[] private _active;
    /// @dev Position in `_active` plus one, so that zero means "not listed".
    mapping(address node => uint256) private _activeSlot;
    /// @dev Each node's terms before its last change of them, and that change's time.
    mapping(address node => Terms) private _prior;
    mapping(address node => uint64) private _termsChangedAt;

    modifier onlyMarket() {
        if (msg.sender != _market) revert NotMarket(msg.sender);
        _;
    }

    /// @param token_ The staked token.
    /// @param minStake_ Minimum first stake; below it after a slash, a node is deactivated.
    /// @param unbondingDelay_ Seconds a leaving node stays slashable.
    /// @param termsLock_ Seconds between two changes of a node's model, span or price; the
    /// market requires at least its longest job.
    constructor(IERC20 token_, uint256 minStake_, uint64 unbondingDelay_, uint64 termsLock_)
        Ownable(msg.sender)
    {
        _token = token_;
        _minStake = minStake_;
        _unbondingDelay = unbondingDelay_;
        _termsLock = termsLock_;
    }

    /// @inheritdoc INodeRegistry
    function setMarket(address market_) external onlyOwner {
        if (_market != address(0)) revert MarketAlreadySet();
        if (market_ == address(0)) revert InvalidMarket();
        _market = market_;
        emit MarketSet(market_);
    }

    /// @inheritdoc INodeRegistry
    function stake(uint256 amount, NodeConfig calldata cfg) external nonReentrant {
        Node storage node = _nodes[msg.sender];
        if (node.status == NodeStatus.Unbonding) revert NodeUnbonding(msg.sender);
        _checkConfig(cfg);
        if (node.status == NodeStatus.None) {
            if (amount < _minStake) revert StakeBelowMinimum(msg.sender, amount, _minStake);
            node.status = NodeStatus.Active;
            _active.push(msg.sender);
            _activeSlot[msg.sender] = _active.length;
        }
        node.stake += amount;
        _applyConfig(node, cfg);
        emit NodeStaked(msg.sender, amount, node.stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeRegistry
    function updateConfig(NodeConfig calldata cfg) external {
        Node storage node = _nodes[msg.sender];
        if (node.status != NodeStatus.Active) revert NodeNotActive(msg.sender);
        _checkConfig(cfg);
        _applyConfig(node, cfg);
    }

    /// @inheritdoc INodeRegistry
    function requestUnstake() external {
        Node storage node = _nodes[msg.sender];
        if (node.status != NodeStatus.Active) revert NodeNotActive(msg.sender);
        _deactivate(msg.sender, node);
    }

    /// @inheritdoc INodeRegistry
    function withdraw() external nonReentrant {
        Node storage node = _nodes[msg.sender];
        if (node.status != NodeStatus.Unbonding) revert NotUnbonding(msg.sender);
        if (block.timestamp < node.unbondingAt) {
            revert UnbondingNotOver(msg.sender, block.timestamp, node.unbondingAt);
        }
        uint256 amount = node.stake;
        delete _nodes[msg.sender];
        delete _prior[msg.sender];
        delete _termsChangedAt[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc INodeRegistry
    function slash(address node, uint256 amount, address to) external onlyMarket nonReentrant returns (uint256 taken) {
        Node storage record = _nodes[node];
        uint256 have = record.stake;
        taken = amount < have ? amount : have;
        // taken <= have by the line above, so the subtraction cannot underflow.
        unchecked {
            record.stake = have - taken;
        }
        if (record.status == NodeStatus.Active && record.stake < _minStake) _deactivate(node, record);
        emit NodeSlashed(node, taken, record.stake);
        if (taken > 0) _token.safeTransfer(to, taken);
    }

    /// @inheritdoc INodeRegistry
    function getNode(address node) external view returns (Node memory) {
        return _nodes[node];
    }

    /// @inheritdoc INodeRegistry
    function isActive(address node) external view returns (bool) {
        return _nodes[node].status == NodeStatus.Active;
    }

    /// @inheritdoc INodeRegistry
    function activeCount() external view returns (uint256) {
        return _active.length;
    }

    /// @inheritdoc INodeRegistry
    function activeNodes(uint256 offset, uint256 limit) external view returns (address[] memory page) {
        uint256 total = _active.length;
        if (offset >= total) return new address[](0);
        uint256 count = total - offset < limit ? total - offset : limit;
        page = new address[](count);
        for (uint256 i = 0; i < count; ++i) {
            page[i] = _active[offset + i];
        }
    }

    /// @inheritdoc INodeRegistry
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc INodeRegistry
    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    /// @inheritdoc INodeRegistry
    function termsLock() external view returns (uint64) {
        return _termsLock;
    }

    /// @inheritdoc INodeRegistry
    function priorTerms(address node) external view returns (Terms memory prior, uint64 changedAt) {
        return (_prior[node], _termsChangedAt[node]);
    }

    /// @inheritdoc INodeRegistry
    function payableUntil(address node) external view returns (uint64) {
        Node storage record = _nodes[node];
        if (record.status == NodeStatus.Active) return type(uint64).max;
        if (record.status == NodeStatus.None) return 0;
        return record.unbondingAt - _unbondingDelay + _termsLock;
    }

    /// @inheritdoc INodeRegistry
    function market() external view returns (address) {
        return _market;
    }

    /// @inheritdoc INodeRegistry
    function token() external view returns (IERC20) {
        return _token;
    }

    function _checkConfig(NodeConfig calldata cfg) private pure {
        if (cfg.start >= cfg.end) revert InvalidSpan(cfg.start, cfg.end);
        uint256 len = bytes(cfg.endpoint).length;
        if (len == 0 || len > _MAX_ENDPOINT_BYTES) revert InvalidEndpoint();
        if (cfg.pubkey == bytes32(0)) revert InvalidPubkey();
        if (cfg.modelId == bytes32(0)) revert InvalidModelId();
        if (cfg.hardware == bytes32(0)) revert InvalidHardware();
    }

    /// @dev A change of the terms a job is checked against keeps the old ones (`_prior`)
    /// for the jobs sent before it, at most once per `_termsLock` (or a second change could
    /// void jobs sent under the first). A first stake has no terms to keep.
    function _applyConfig(Node storage node, NodeConfig calldata cfg) private {
        bool changed = node.modelId != cfg.modelId || node.start != cfg.start || node.end != cfg.end
            || node.pricePerToken != cfg.pricePerToken;
        if (changed && node.modelId != bytes32(0)) {
            uint256 allowedAt = uint256(_termsChangedAt[msg.sender]) + _termsLock;
            if (_termsChangedAt[msg.sender] != 0 && block.timestamp < allowedAt) {
                revert TermsChangeTooSoon(msg.sender, allowedAt);
            }
            _prior[msg.sender] = Terms(node.modelId, node.start, node.end, node.pricePerToken);
            _termsChangedAt[msg.sender] = uint64(block.timestamp);
            emit TermsChanged(msg.sender, uint64(block.timestamp));
        }
        node.endpoint = cfg.endpoint;
        node.pubkey = cfg.pubkey;
        node.modelId = cfg.modelId;
        node.start = cfg.start;
        node.end = cfg.end;
        node.pricePerToken = cfg.pricePerToken;
        node.hardware = cfg.hardware;
        emit NodeConfigured(
            msg.sender, cfg.endpoint, cfg.pubkey, cfg.modelId, cfg.start, cfg.end, cfg.pricePerToken, cfg.hardware
        );
    }

    /// @dev Swap-and-pop keeps removal O(1); the listing order is therefore not stable.
    function _deactivate(address account, Node storage node) private {
        uint256 slot = _activeSlot[account];
        uint256 last = _active.length;
        if (slot != last) {
            address moved = _active[last - 1];
            _active[slot - 1] = moved;
            _activeSlot[moved] = slot;
        }
        _active.pop();
        delete _activeSlot[account];
        node.status = NodeStatus.Unbonding;
        node.unbondingAt = uint64(block.timestamp) + _unbondingDelay;
        emit UnstakeRequested(account, node.stake, node.unbondingAt);
    }
}
