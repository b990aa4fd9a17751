// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// @notice Routes over parts of spans: nodes registered on 0:12, 10:20 and 18:30 overlap, and a
/// route through them runs each hop on a contiguous part of its registered span. Each hop is
/// paid (and rewarded) for the layers it ran; a hop named for a layer outside its registration
/// is refused, since it could not have run that layer.
contract PartSpansTest is MarketFixture {
    bytes32 internal constant COMMITMENT = keccak256("receipts");
    address internal a = address(uint160(0x1200));
    address internal b = address(uint160(0x1201));
    address internal c = address(uint160(0x1202));

    function setUp() public override {
        super.setUp();
        address[3] memory who = [a, b, c];
        uint16[3] memory starts = [uint16(0), 10, 18];
        uint16[3] memory ends = [uint16(12), 20, 30];
        for (uint256 i = 0; i < 3; ++i) {
            _fund(who[i], 1_000e18);
            vm.prank(who[i]);
            registry.stake(MIN_STAKE, _config(starts[i], ends[i], PRICE));
        }
        _deposit(client, 100e18);
    }

    /// @dev A route a 0:cut1, b cut1:cut2, c cut2:30.
    function _route(uint16 cut1, uint16 cut2) internal view returns (IJobMarket.Job memory job) {
        job = _job(client, 1);
        job.route[0] = a;
        job.route[1] = b;
        job.route[2] = c;
        job.spanStarts[0] = 0;
        job.spanEnds[0] = cut1;
        job.spanStarts[1] = cut1;
        job.spanEnds[1] = cut2;
        job.spanStarts[2] = cut2;
        job.spanEnds[2] = 30;
    }

    function _submitAs(address node, IJobMarket.Job memory job, uint32 served) internal returns (bytes32) {
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.prank(node);
        market.submitResult(job, sig, served, COMMITMENT);
        return market.hashJob(job);
    }

    function testEachHopIsPaidForTheLayersItRan() public {
        IJobMarket.Job memory job = _route(12, 20); // a runs all 12, b 12:20 (8), c 20:30 (10)
        bytes32 jobHash = _submitAs(c, job, 5);
        IJobMarket.JobRecord memory rec = market.getJob(jobHash);
        assertEq(rec.layers[0], 12, "a's layers");
        assertEq(rec.layers[1], 8, "b's part");
        assertEq(rec.layers[2], 10, "c's part");
        assertEq(rec.amounts[1], 5 * 8 * PRICE, "b paid for its part");
        assertEq(rec.cost, 5 * 30 * PRICE, "the route's 30 layers");
        assertEq(market.escrowOf(client), 100e18 - rec.cost, "escrow");
    }

    /// @dev Attack: a hop named for layers it does not hold (b registered 10:20, named 8:20)
    /// would be paid for two layers it could not have run.
    function testAHopOutsideItsRegistrationIsRefused() public {
        IJobMarket.Job memory job = _route(8, 20);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, b, uint16(8), uint16(20)));
        vm.prank(c);
        market.submitResult(job, sig, 5, COMMITMENT);

        job = _route(12, 21); // b past its end
        sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, b, uint16(12), uint16(21)));
        vm.prank(c);
        market.submitResult(job, sig, 5, COMMITMENT);

        job = _route(12, 17); // c from before its start
        sig = _sign(market, job, CLIENT_KEY);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, c, uint16(17), uint16(30)));
        vm.prank(c);
        market.submitResult(job, sig, 5, COMMITMENT);
    }

    // ---------------------------------------------------------------------- fuzz

    /// @dev Any cut points inside the overlaps: every hop is paid and rewarded exactly for its
    /// part, the client is charged for the 30 layers once, and tokens are conserved.
    function testFuzzAnyCutPaysEveryHopForItsPart(uint16 cut1, uint16 cut2, uint32 served, uint256 pool)
        public
    {
        cut1 = uint16(bound(cut1, 10, 12));
        cut2 = uint16(bound(cut2, 18, 20));
        served = uint32(bound(served, 1, 64));
        pool = bound(pool, 0, 1e18);
        vm.prank(other);
        market.fundRewards(pool);
        IJobMarket.Job memory job = _route(cut1, cut2);
        bytes32 jobHash = _submitAs(a, job, served);
        assertEq(market.getJob(jobHash).cost, uint256(served) * 30 * PRICE, "cost of 30 layers");

        vm.warp(block.timestamp + 1 hours);
        uint256[3] memory before = [token.balanceOf(a), token.balanceOf(b), token.balanceOf(c)];
        market.finalize(jobHash);
        uint256 reward = uint256(served) * 1e15;
        if (reward > pool) reward = pool;
        uint256[3] memory layers = [uint256(cut1), cut2 - cut1, 30 - cut2];
        address[3] memory who = [a, b, c];
        for (uint256 i = 0; i < 3; ++i) {
            uint256 share = uint256(served) * layers[i] * PRICE;
            assertEq(token.balanceOf(who[i]) - before[i], share + reward * layers[i] / 30, "its part");
        }
        address[] memory wallets = new address[](3);
        wallets[0] = a;
        wallets[1] = b;
        wallets[2] = c;
        _assertConserved(_concat(_actors(), wallets));
    }

    /// @dev Any hop whose named layers reach outside its registration is refused.
    function testFuzzAnyLayerOutsideTheRegistrationIsRefused(uint16 cut1, uint16 cut2) public {
        cut1 = uint16(bound(cut1, 1, 28));
        cut2 = uint16(bound(cut2, cut1 + 1, 29));
        IJobMarket.Job memory job = _route(cut1, cut2);
        bytes memory sig = _sign(market, job, CLIENT_KEY);
        // The hops are checked in route order; the first one outside its span is named.
        if (cut1 > 12) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, a, uint16(0), cut1));
        } else if (cut1 < 10 || cut2 > 20) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, b, cut1, cut2));
        } else if (cut2 < 18) {
            vm.expectRevert(abi.encodeWithSelector(IJobMarket.SpanMismatch.selector, c, cut2, uint16(30)));
        }
        vm.prank(a);
        market.submitResult(job, sig, 1, COMMITMENT);
    }

    function _concat(address[] memory x, address[] memory y) internal pure returns (address[] memory all) {
        all = new address[](x.length + y.length);
        for (uint256 i = 0; i < x.length; ++i) {
            all[i] = x[i];
        }
        for (uint256 i = 0; i < y.length; ++i) {
            all[x.length + i] = y[i];
        }
    }
}
