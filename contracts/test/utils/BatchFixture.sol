// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBatchSettlement} from "../../interfaces/IBatchSettlement.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {DisputeFixture} from "./DisputeFixture.sol";
import {MerkleTree} from "./MerkleTree.sol";
import {vm} from "./Vm.sol";

/// @notice Builds batches as a node's settler does: leaves per client, an OpenZeppelin-style
/// tree per entry (pairs hashed commutatively, an odd node carried up), credits per node.
abstract contract BatchFixture is DisputeFixture {
    bytes32 internal constant COMMITMENT = keccak256("receipts");
    uint256 internal constant OTHER2_KEY = 0x0C2;

    /// @dev A batched job over the three nodes for `who`, signed with `key`, each hop at
    /// the registered price.
    function _batched(address who, uint256 key, uint256 nonce, uint32 index, uint32 served)
        internal
        view
        returns (IBatchSettlement.BatchedJob memory bj)
    {
        bj.job = _job(who, nonce);
        bj.signature = _sign(market, bj.job, key);
        bj.index = index;
        bj.tokensServed = served;
        bj.commitment = COMMITMENT;
        bj.prices = new uint256[](3);
        for (uint256 i = 0; i < 3; ++i) {
            bj.prices[i] = PRICE;
        }
    }

    /// @dev `count` jobs of one client, sorted by job hash and indexed in that order.
    function _clientJobs(address who, uint256 key, uint256 firstNonce, uint256 count, uint32 served)
        internal
        view
        returns (IBatchSettlement.BatchedJob[] memory jobs)
    {
        jobs = new IBatchSettlement.BatchedJob[](count);
        for (uint256 k = 0; k < count; ++k) {
            jobs[k] = _batched(who, key, firstNonce + k, 0, served);
        }
        // Insertion sort by job hash (counts are small).
        for (uint256 a = 1; a < count; ++a) {
            for (uint256 b = a; b > 0 && market.hashJob(jobs[b].job) < market.hashJob(jobs[b - 1].job); --b) {
                (jobs[b], jobs[b - 1]) = (jobs[b - 1], jobs[b]);
            }
        }
        for (uint256 k = 0; k < count; ++k) {
            jobs[k].index = uint32(k);
        }
    }

    function _leaves(IBatchSettlement.BatchedJob[] memory jobs) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](jobs.length);
        for (uint256 k = 0; k < jobs.length; ++k) {
            leaves[k] = batches.leafHash(jobs[k]);
        }
    }

    function _rootOf(bytes32[] memory leaves) internal pure returns (bytes32) {
        return MerkleTree.root(leaves);
    }

    function _proofOf(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory) {
        return MerkleTree.proof(leaves, index);
    }

    /// @dev The entry a settler builds for `jobs` (all of one client over the three nodes).
    function _entryOf(address who, IBatchSettlement.BatchedJob[] memory jobs)
        internal
        view
        returns (IBatchSettlement.Entry memory e)
    {
        e.client = who;
        e.jobsRoot = _rootOf(_leaves(jobs));
        e.jobs = uint32(jobs.length);
        e.credits = new IBatchSettlement.Credit[](3);
        IJobMarket.MarketParams memory mp = market.params();
        for (uint256 i = 0; i < 3; ++i) {
            e.credits[i].node = nodes[i];
            for (uint256 k = 0; k < jobs.length; ++k) {
                uint256 layers = jobs[k].job.spanEnds[i] - jobs[k].job.spanStarts[i];
                e.credits[i].amount += uint256(jobs[k].tokensServed) * layers * jobs[k].prices[i];
                e.credits[i].reward += mp.rewardPerToken * jobs[k].tokensServed * layers / 30;
            }
        }
    }

    /// @dev Hashed here rather than by the contract, so that building a proof makes no call
    /// that would use up a `vm.prank` or `vm.expectRevert`.
    function _hashes(IBatchSettlement.Entry[] memory entries) internal pure returns (bytes32[] memory h) {
        h = new bytes32[](entries.length);
        for (uint256 i = 0; i < entries.length; ++i) {
            h[i] = keccak256(abi.encode(entries[i]));
        }
    }

    function _ref(uint256 batchId, IBatchSettlement.Entry[] memory entries, uint16 index)
        internal
        pure
        returns (IBatchSettlement.EntryRef memory)
    {
        return IBatchSettlement.EntryRef(batchId, index, _hashes(entries), entries[index]);
    }

    function _noRef() internal pure returns (IBatchSettlement.EntryRef memory ref) {}

    function _leafOf(IBatchSettlement.BatchedJob memory bj) internal view returns (IBatchSettlement.Leaf memory) {
        return IBatchSettlement.Leaf(
            bj.index, market.hashJob(bj.job), keccak256(bj.signature), bj.tokensServed, bj.commitment, bj.prices
        );
    }

    function _post(IBatchSettlement.Entry[] memory entries) internal returns (uint256 batchId) {
        vm.prank(nodes[2]);
        return batches.postBatch(entries);
    }

    function _one(IBatchSettlement.Entry memory e) internal pure returns (IBatchSettlement.Entry[] memory list) {
        list = new IBatchSettlement.Entry[](1);
        list[0] = e;
    }

    /// @dev The payout the contract stores for `entries` (bit `i` of `unfunded`: entry `i`
    /// paid nothing): per node in order of first credit.
    function _payout(IBatchSettlement.Entry[] memory entries, uint256 unfunded)
        internal
        pure
        returns (IBatchSettlement.Payout memory p)
    {
        address[] memory seen = new address[](64);
        uint256[] memory amounts = new uint256[](64);
        uint256[] memory rewards = new uint256[](64);
        uint256 count = 0;
        for (uint256 i = 0; i < entries.length; ++i) {
            if (unfunded & (1 << i) != 0) continue;
            for (uint256 j = 0; j < entries[i].credits.length; ++j) {
                IBatchSettlement.Credit memory c = entries[i].credits[j];
                uint256 k = 0;
                while (k < count && seen[k] != c.node) ++k;
                if (k == count) seen[count++] = c.node;
                amounts[k] += c.amount;
                rewards[k] += c.reward;
            }
        }
        p = IBatchSettlement.Payout(new address[](count), new uint256[](count), new uint256[](count));
        for (uint256 k = 0; k < count; ++k) {
            (p.nodes[k], p.amounts[k], p.rewards[k]) = (seen[k], amounts[k], rewards[k]);
        }
    }

    function _payout(IBatchSettlement.Entry[] memory entries) internal pure returns (IBatchSettlement.Payout memory) {
        return _payout(entries, 0);
    }

    function _costOf(IBatchSettlement.Entry memory e) internal pure returns (uint256 cost) {
        for (uint256 i = 0; i < e.credits.length; ++i) {
            cost += e.credits[i].amount;
        }
    }

    /// @dev The fixture's actors and one more wallet.
    function _with(address extra) internal view returns (address[] memory all) {
        address[] memory actors = _actors();
        all = new address[](actors.length + 1);
        for (uint256 i = 0; i < actors.length; ++i) {
            all[i] = actors[i];
        }
        all[actors.length] = extra;
    }

}
