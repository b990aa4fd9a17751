// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ShareToken} from "../../ShareToken.sol";
import {NodeRegistry} from "../../NodeRegistry.sol";
import {JobMarket} from "../../JobMarket.sol";
import {DisputeCourt} from "../../DisputeCourt.sol";
import {BatchSettlement} from "../../BatchSettlement.sol";
import {IBatchSettlement} from "../../interfaces/IBatchSettlement.sol";
import {IDisputeCourt} from "../../interfaces/IDisputeCourt.sol";
import {INodeRegistry} from "../../interfaces/INodeRegistry.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {vm} from "./Vm.sol";
import {Test} from "./Test.sol";

/// @notice A deployed token, registry, market and court with a client, three nodes splitting
/// a 30-layer model as [0,10) [10,20) [20,30), and five verifier accounts (a challenger and a
/// jury of three leave one spare).
abstract contract MarketFixture is Test {
    bytes32 internal constant MODEL = keccak256("SmolLM2-135M-Instruct");
    uint256 internal constant MIN_STAKE = 100e18;
    uint64 internal constant UNBONDING = 7 days;
    uint64 internal constant TERMS_LOCK = 1 days; // the market's maxJobTtl
    uint256 internal constant PRICE = 1e12;
    uint256 internal constant T0 = 1_700_000_000;

    uint256 internal constant CLIENT_KEY = 0xC11E47;
    uint256 internal constant OTHER_KEY = 0x0BAD;

    ShareToken internal token;
    NodeRegistry internal registry;
    JobMarket internal market;
    DisputeCourt internal court;
    BatchSettlement internal batches;

    address internal client;
    address internal other;
    address[3] internal nodes;
    address[5] internal verifiers;

    function setUp() public virtual {
        vm.warp(T0);
        client = vm.addr(CLIENT_KEY);
        other = vm.addr(OTHER_KEY);
        for (uint256 i = 0; i < 3; ++i) {
            nodes[i] = address(uint160(0x1000 + i));
        }
        for (uint256 i = 0; i < 5; ++i) {
            verifiers[i] = address(uint160(0x2000 + i));
        }
        token = new ShareToken(0);
        (registry, market, court) = _deploy(IERC20(address(token)));
        _fund(client, 1_000e18);
        _fund(other, 1_000e18);
        for (uint256 i = 0; i < 3; ++i) {
            _fund(nodes[i], 1_000e18);
        }
        for (uint256 i = 0; i < 5; ++i) {
            _fund(verifiers[i], 1_000e18);
        }
    }

    function _params() internal pure virtual returns (IJobMarket.MarketParams memory) {
        return IJobMarket.MarketParams({
            challengeWindow: 1 hours,
            withdrawalDelay: 2 days,
            maxJobTtl: 1 days,
            slashAmount: 50e18,
            bountyBps: 2_000,
            rewardPerToken: 1e15
        });
    }

    function _courtParams() internal pure virtual returns (IDisputeCourt.CourtParams memory) {
        return IDisputeCourt.CourtParams({
            minVerifierStake: 100e18,
            verifierUnbondingDelay: 3 days,
            minBond: 20e18,
            jurySize: 3,
            responseWindow: 30 minutes,
            commitWindow: 1 hours,
            revealWindow: 1 hours,
            jurorPenalty: 10e18,
            jurorShareBps: 5_000
        });
    }

    function _deploy(IERC20 asset) internal returns (NodeRegistry reg, JobMarket mkt, DisputeCourt crt) {
        reg = new NodeRegistry(asset, MIN_STAKE, UNBONDING, TERMS_LOCK);
        mkt = new JobMarket(asset, reg, _params());
        reg.setMarket(address(mkt));
        crt = new DisputeCourt(asset, mkt, _courtParams());
        mkt.setCourt(address(crt));
        batches = new BatchSettlement(mkt, _batchParams());
        mkt.setBatches(address(batches));
    }

    function _batchParams() internal pure virtual returns (IBatchSettlement.BatchParams memory) {
        return IBatchSettlement.BatchParams({demandBond: 5e18, responseWindow: 30 minutes});
    }

    /// @dev Mints to `who` and approves both contracts, as a wallet would before staking.
    function _fund(address who, uint256 amount) internal {
        token.mint(who, amount);
        vm.startPrank(who);
        token.approve(address(registry), type(uint256).max);
        token.approve(address(market), type(uint256).max);
        token.approve(address(court), type(uint256).max);
        token.approve(address(batches), type(uint256).max);
        vm.stopPrank();
    }

    function _config(uint16 start, uint16 end, uint256 price)
        internal
        pure
        returns (INodeRegistry.NodeConfig memory)
    {
        return INodeRegistry.NodeConfig({
            endpoint: "http://127.0.0.1:8000",
            pubkey: keccak256(abi.encode("ed25519", start)),
            modelId: MODEL,
            start: start,
            end: end,
            pricePerToken: price,
            hardware: "cpu"
        });
    }

    function _stakeNodes() internal {
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(nodes[i]);
            registry.stake(MIN_STAKE, _config(uint16(10 * i), uint16(10 * i + 10), PRICE));
        }
    }

    function _stakeVerifiers() internal {
        for (uint256 i = 0; i < 5; ++i) {
            vm.prank(verifiers[i]);
            court.stakeVerifier(100e18);
        }
    }

    function _deposit(address who, uint256 amount) internal {
        vm.prank(who);
        market.deposit(amount);
    }

    /// @dev A job over the three staked nodes, signed for by `who`.
    function _job(address who, uint256 nonce) internal view returns (IJobMarket.Job memory job) {
        job.modelId = MODEL;
        job.route = new address[](3);
        job.spanStarts = new uint16[](3);
        job.spanEnds = new uint16[](3);
        for (uint256 i = 0; i < 3; ++i) {
            job.route[i] = nodes[i];
            job.spanStarts[i] = uint16(10 * i);
            job.spanEnds[i] = uint16(10 * i + 10);
        }
        job.maxTokens = 64;
        job.maxPricePerToken = PRICE;
        job.nonce = nonce;
        job.deadline = uint64(block.timestamp + 1 hours);
        job.client = who;
    }

    function _sign(JobMarket mkt, IJobMarket.Job memory job, uint256 key) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, mkt.hashJob(job));
        return abi.encodePacked(r, s, v);
    }

    /// @dev Submits `job` as its first hop and returns its hash.
    function _submit(IJobMarket.Job memory job, uint32 served) internal returns (bytes32 jobHash) {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(job.route[0]);
        market.submitResult(job, sig, served, keccak256("receipts"));
        return market.hashJob(job);
    }

    /// @dev Everything the three contracts and the actors hold must add up to the supply.
    function _assertConserved(address[] memory wallets) internal view {
        uint256 sum = token.balanceOf(address(registry)) + token.balanceOf(address(market))
            + token.balanceOf(address(court)) + token.balanceOf(address(batches));
        for (uint256 i = 0; i < wallets.length; ++i) {
            sum += token.balanceOf(wallets[i]);
        }
        assertEq(sum, token.totalSupply(), "tokens conserved");
        assertEq(
            token.balanceOf(address(market)),
            market.totalEscrow() + market.totalLocked() + market.totalBatched() + market.rewardPool(),
            "market holdings match its books"
        );
        assertEq(
            token.balanceOf(address(court)), court.totalVerifierStake() + court.totalHeld(), "court holdings match its books"
        );
    }

    function _actors() internal view returns (address[] memory all) {
        all = new address[](10);
        all[0] = client;
        all[1] = other;
        for (uint256 i = 0; i < 3; ++i) {
            all[2 + i] = nodes[i];
        }
        for (uint256 i = 0; i < 5; ++i) {
            all[5 + i] = verifiers[i];
        }
    }
}
