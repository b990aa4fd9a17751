// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title Node registry and staking
/// @notice Nodes stake, declare what they serve and at what price, and leave through an
/// unbonding delay long enough for a cheater to be caught before its stake is gone.
interface INodeRegistry {
    /// @notice Lifecycle of a node: `None` (never staked or withdrawn), `Active`, `Unbonding`.
    enum NodeStatus {
        None,
        Active,
        Unbonding
    }

    /// @notice What a node declares when it stakes or reconfigures.
    /// @dev The span is half-open: the node runs layers `start .. end-1`. `hardware` is the
    /// class of device the span runs on (`cpu`, `mps`, `cuda-sm86`, ...), ASCII, zero-padded:
    /// verifiers choose the tolerance rule for a hop by it.
    struct NodeConfig {
        string endpoint;
        bytes32 pubkey;
        bytes32 modelId;
        uint16 start;
        uint16 end;
        uint256 pricePerToken;
        bytes32 hardware;
    }

    /// @notice A registered node as stored.
    struct Node {
        uint256 stake;
        string endpoint;
        bytes32 pubkey;
        bytes32 modelId;
        uint16 start;
        uint16 end;
        uint256 pricePerToken;
        NodeStatus status;
        uint64 unbondingAt;
        bytes32 hardware;
    }

    /// @notice A node added `amount` to its stake, which is now `totalStake`.
    event NodeStaked(address indexed node, uint256 amount, uint256 totalStake);
    /// @notice A node declared (or changed) its endpoint, keys, model, span, price and
    /// hardware class.
    event NodeConfigured(
        address indexed node,
        string endpoint,
        bytes32 pubkey,
        bytes32 indexed modelId,
        uint16 start,
        uint16 end,
        uint256 pricePerToken,
        bytes32 hardware
    );
    /// @notice A node's model, span or price changed at `changedAt`; jobs it may have been
    /// sent before then are still checked and priced against the terms it had.
    event TermsChanged(address indexed node, uint64 changedAt);
    /// @notice A node left the active set; its `stake` can be withdrawn from `unbondingAt`.
    event UnstakeRequested(address indexed node, uint256 stake, uint64 unbondingAt);
    /// @notice A node took back its remaining stake and was deleted.
    event StakeWithdrawn(address indexed node, uint256 amount);
    /// @notice The market took `amount` of a node's stake, leaving `remainingStake`.
    event NodeSlashed(address indexed node, uint256 amount, uint256 remainingStake);
    /// @notice The owner wired the registry to its job market (once).
    event MarketSet(address indexed market);

    /// @notice What a job is checked and priced against: the model, span and price.
    struct Terms {
        bytes32 modelId;
        uint16 start;
        uint16 end;
        uint256 pricePerToken;
    }

    /// @notice A node's model, span or price changed less than `termsLock` ago: the next
    /// change may come from `allowedAt` (its jobs are checked against its last two terms).
    error TermsChangeTooSoon(address node, uint256 allowedAt);
    /// @notice A first stake of `have` is below the minimum `need`.
    error StakeBelowMinimum(address account, uint256 have, uint256 need);
    /// @notice The span is empty or reversed (`start >= end`).
    error InvalidSpan(uint16 start, uint16 end);
    /// @notice The endpoint is empty or longer than 256 bytes.
    error InvalidEndpoint();
    /// @notice The public key is zero.
    error InvalidPubkey();
    /// @notice The model id is zero.
    error InvalidModelId();
    /// @notice The hardware class is empty.
    error InvalidHardware();
    /// @notice The node must be active for this call.
    error NodeNotActive(address node);
    /// @notice The node is unbonding and must withdraw before it stakes again.
    error NodeUnbonding(address node);
    /// @notice The account has not requested to unstake.
    error NotUnbonding(address account);
    /// @notice Withdrawal opens at `unbondingAt`; it is `nowTs`.
    error UnbondingNotOver(address account, uint256 nowTs, uint256 unbondingAt);
    /// @notice Only the job market may call this.
    error NotMarket(address caller);
    /// @notice The market was already set.
    error MarketAlreadySet();
    /// @notice The market address is zero.
    error InvalidMarket();

    /// @notice Wires the registry to its job market; owner only, once.
    function setMarket(address market_) external;

    /// @notice Stakes `amount` and applies `cfg`; the first stake registers the node.
    function stake(uint256 amount, NodeConfig calldata cfg) external;

    /// @notice Changes an active node's configuration. A change of model, span or price
    /// keeps the terms it replaces for the jobs sent before it (`priorTerms`), and may come
    /// at most once per `termsLock`.
    function updateConfig(NodeConfig calldata cfg) external;

    /// @notice Leaves the active set; the stake unlocks after the unbonding delay.
    function requestUnstake() external;

    /// @notice Pays back the remaining stake once the unbonding delay is over.
    function withdraw() external;

    /// @notice Takes up to `amount` of `node`'s stake and sends it to `to`; market only.
    /// @return taken The amount actually taken, `min(amount, stake)`.
    function slash(address node, uint256 amount, address to) external returns (uint256 taken);

    /// @notice The stored record of `node`.
    function getNode(address node) external view returns (Node memory);

    /// @notice Whether `node` is active.
    function isActive(address node) external view returns (bool);

    /// @notice The number of active nodes.
    function activeCount() external view returns (uint256);

    /// @notice Up to `limit` active nodes starting at index `offset`.
    function activeNodes(uint256 offset, uint256 limit) external view returns (address[] memory);

    /// @notice The minimum first stake.
    function minStake() external view returns (uint256);

    /// @notice Seconds between `requestUnstake` and `withdraw`.
    function unbondingDelay() external view returns (uint64);

    /// @notice The terms `node` had before its last change of model, span or price, and when
    /// that change was (0: never changed).
    function priorTerms(address node) external view returns (Terms memory prior, uint64 changedAt);

    /// @notice The last second at which work sent to `node` may still be paid: never ending
    /// (the largest uint64) while it is active; for an unbonding node, `termsLock` after it
    /// asked to leave (a job sent before then has expired by that time); 0 for none.
    function payableUntil(address node) external view returns (uint64);

    /// @notice Seconds between two changes of a node's model, span or price: at least the
    /// market's longest job, so that a job is always checked against terms it was sent under.
    function termsLock() external view returns (uint64);

    /// @notice The job market allowed to slash.
    function market() external view returns (address);

    /// @notice The staked token.
    function token() external view returns (IERC20);
}
