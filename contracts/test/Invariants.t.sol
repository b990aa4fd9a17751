// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {MarketHandler} from "./utils/MarketHandler.sol";

/// @notice Invariants over random sequences of handler actions (see MarketHandler).
contract InvariantsTest is MarketFixture {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (CLIENT_KEY, OTHER_KEY);
        address[] memory ns = new address[](3);
        address[] memory vs = new address[](3);
        for (uint256 i = 0; i < 3; ++i) {
            (ns[i], vs[i]) = (nodes[i], verifiers[i]);
        }
        handler = new MarketHandler(token, registry, market, keys, ns, vs);
        // Start from a live network so that short sequences already reach jobs and challenges.
        _stakeNodes();
        _stakeVerifiers();
        _deposit(client, 50e18);
        _deposit(other, 50e18);
    }

    /// @dev Read by the invariant fuzzer: only the handler is called.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariantEveryTokenIsInExactlyOnePlace() public view {
        address[] memory actors = handler.actors();
        uint256 wallets = 0;
        uint256 escrows = 0;
        uint256 nodeStakes = 0;
        uint256 verifierStakes = 0;
        for (uint256 i = 0; i < actors.length; ++i) {
            wallets += token.balanceOf(actors[i]);
            escrows += market.escrowOf(actors[i]);
            nodeStakes += registry.getNode(actors[i]).stake;
            verifierStakes += market.verifierStake(actors[i]);
        }
        assertEq(escrows, market.totalEscrow(), "escrows add up");
        assertEq(verifierStakes, market.totalVerifierStake(), "verifier stakes add up");
        assertEq(nodeStakes, token.balanceOf(address(registry)), "registry holds exactly the node stakes");
        assertEq(
            token.balanceOf(address(market)),
            escrows + verifierStakes + market.totalLocked() + market.rewardPool(),
            "market holds exactly escrows, stakes, locked payments and the pool"
        );
        assertEq(
            wallets + nodeStakes + verifierStakes + escrows + market.totalLocked() + market.rewardPool(),
            token.totalSupply(),
            "sum of all places == totalSupply"
        );
    }

    function invariantNoJobSettlesTwice() public view {
        assertTrue(!handler.settledTwice(), "a job settled twice");
        uint256 locked = 0;
        for (uint256 i = 0; i < handler.jobCount(); ++i) {
            IJobMarket.JobRecord memory rec = market.getJob(handler.jobs(i));
            if (rec.status == IJobMarket.JobStatus.Submitted) locked += rec.cost;
            else assertEq(handler.settlements(handler.jobs(i)), 1, "settled job counted once");
        }
        assertEq(locked, market.totalLocked(), "locked == cost of pending jobs");
    }

    function invariantSlashNeverExceedsTheStake() public view {
        assertTrue(!handler.slashAboveStake(), "a slash took more than the stake");
    }

    function invariantNothingLeavesBeforeItsDelay() public view {
        assertTrue(!handler.leftEarly(), "a stake or deposit left before its delay");
    }
}
