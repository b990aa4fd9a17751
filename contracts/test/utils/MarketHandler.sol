// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ShareToken} from "../../ShareToken.sol";
import {NodeRegistry} from "../../NodeRegistry.sol";
import {JobMarket} from "../../JobMarket.sol";
import {DisputeCourt} from "../../DisputeCourt.sol";
import {IDisputeCourt} from "../../interfaces/IDisputeCourt.sol";
import {INodeRegistry} from "../../interfaces/INodeRegistry.sol";
import {IJobMarket} from "../../interfaces/IJobMarket.sol";
import {vm} from "./Vm.sol";
import {Test} from "./Test.sol";
import {Receipts} from "./Receipts.sol";

/// @notice The invariant fuzzer's only target: random but well-formed actions by a fixed
/// cast of clients, nodes and verifiers, over time and blocks. Every call may fail; ghost
/// flags record any call that succeeded when it must not have, or did what it must not.
contract MarketHandler is Test {
    using Receipts for Receipts.Receipt[];

    bytes32 internal constant MODEL = keccak256("SmolLM2-135M-Instruct");
    /// @dev Jobs route over the first three nodes (spans 10 layers each); a fourth node, if
    /// any, serves hop 1's span and stands in for it in amended jobs.
    uint256 internal constant ROUTE = 3;

    ShareToken public immutable token;
    NodeRegistry public immutable registry;
    JobMarket public immutable market;
    DisputeCourt public immutable court;

    uint256[] internal _clientKeys;
    address[] public clients;
    address[] public nodes;
    address[] public verifiers;
    bytes32[] public jobs;
    bytes32[] public disputes;
    uint256 internal _nonce;

    /// @dev What the submitter committed: its receipts prove `proven` positions, it charged `served`.
    struct Commit {
        bytes receipts;
        uint32 proven;
        uint32 served;
    }

    /// @dev A juror's vote as it committed it.
    struct Vote {
        bool uphold;
        bytes32 salt;
    }

    mapping(bytes32 jobHash => Commit) internal _commits;
    mapping(bytes32 jobHash => mapping(address juror => Vote)) internal _votes;

    mapping(bytes32 jobHash => uint256) public settlements;
    mapping(bytes32 jobHash => uint256) public resolutions;
    bool public settledTwice;
    bool public resolvedTwice;
    bool public slashAboveStake;
    bool public unexplainedSlash;
    bool public falseOverchargeProof;
    bool public wrongRevealAccepted;
    bool public wrongVerdict;
    bool public leftEarly;
    bool public amendedOverCap;
    uint256 public upheldCount;
    uint256 public rejectedCount;
    uint256 public overchargeCount;

    /// @dev The one node the current action may legitimately slash.
    address internal _maySlash;

    constructor(
        ShareToken token_,
        NodeRegistry registry_,
        JobMarket market_,
        DisputeCourt court_,
        uint256[] memory clientKeys,
        address[] memory nodes_,
        address[] memory verifiers_
    ) {
        token = token_;
        registry = registry_;
        market = market_;
        court = court_;
        _clientKeys = clientKeys;
        for (uint256 i = 0; i < clientKeys.length; ++i) {
            clients.push(vm.addr(clientKeys[i]));
        }
        nodes = nodes_;
        verifiers = verifiers_;
    }

    /// @dev Any node stake that falls during the action must be the one it may slash.
    modifier watchSlashes() {
        uint256[] memory before = new uint256[](nodes.length);
        for (uint256 i = 0; i < nodes.length; ++i) {
            before[i] = registry.getNode(nodes[i]).stake;
        }
        uint256 held = token.balanceOf(address(registry));
        _;
        uint256 fell = 0;
        for (uint256 i = 0; i < nodes.length; ++i) {
            uint256 stake = registry.getNode(nodes[i]).stake;
            if (stake < before[i]) {
                if (nodes[i] != _maySlash) unexplainedSlash = true;
                fell += before[i] - stake;
            }
        }
        if (fell > 0 && held - token.balanceOf(address(registry)) != fell) slashAboveStake = true;
        _maySlash = address(0);
    }

    function actors() external view returns (address[] memory all) {
        all = new address[](clients.length + nodes.length + verifiers.length);
        uint256 k = 0;
        for (uint256 i = 0; i < clients.length; ++i) all[k++] = clients[i];
        for (uint256 i = 0; i < nodes.length; ++i) all[k++] = nodes[i];
        for (uint256 i = 0; i < verifiers.length; ++i) all[k++] = verifiers[i];
    }

    function jobCount() external view returns (uint256) {
        return jobs.length;
    }

    function disputeCount() external view returns (uint256) {
        return disputes.length;
    }

    function overcharged(bytes32 jobHash) external view returns (bool) {
        return _commits[jobHash].served > _commits[jobHash].proven;
    }

    // ------------------------------------------------------------ time, blocks

    /// @dev Mostly short steps, so that disputes live through their windows; now and then
    /// days, so that withdrawals and unbondings come due.
    function warp(uint256 secs) external watchSlashes {
        uint256 step = secs % 8 == 0 ? bound(secs >> 3, 0, 4 days) : bound(secs >> 3, 0, 40 minutes);
        vm.warp(block.timestamp + step);
    }

    /// @dev Mostly a few blocks; now and then past the 256 a draw block's hash stays in reach.
    function roll(uint256 blocks) external watchSlashes {
        uint256 step = blocks % 8 == 0 ? bound(blocks >> 3, 200, 400) : bound(blocks >> 3, 1, 3);
        vm.roll(block.number + step);
    }

    // ------------------------------------------------------------------ escrow

    function deposit(uint256 who, uint256 amount) external watchSlashes {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, token.balanceOf(c));
        vm.prank(c);
        market.deposit(amount);
    }

    function fundRewards(uint256 who, uint256 amount) external watchSlashes {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, token.balanceOf(c) / 10);
        vm.prank(c);
        market.fundRewards(amount);
    }

    function requestWithdrawal(uint256 who, uint256 amount) external watchSlashes {
        address c = clients[who % clients.length];
        amount = bound(amount, 0, market.escrowOf(c));
        vm.prank(c);
        market.requestWithdrawal(amount);
    }

    function withdrawEscrow(uint256 who) external watchSlashes {
        address c = clients[who % clients.length];
        (, uint64 readyAt) = market.pendingWithdrawal(c);
        vm.prank(c);
        try market.withdraw() {
            if (block.timestamp < readyAt) leftEarly = true;
        } catch {}
    }

    // ------------------------------------------------------------------- nodes

    function stakeNode(uint256 who, uint256 amount, uint256 price) external watchSlashes {
        uint256 i = who % nodes.length;
        amount = bound(amount, 0, token.balanceOf(nodes[i]));
        INodeRegistry.NodeConfig memory cfg = INodeRegistry.NodeConfig({
            endpoint: "http://node",
            pubkey: bytes32(i + 1),
            modelId: MODEL,
            start: uint16(10 * (i < ROUTE ? i : 1)),
            end: uint16(10 * (i < ROUTE ? i : 1) + 10),
            pricePerToken: bound(price, 0, 1e15),
            hardware: "cpu"
        });
        vm.prank(nodes[i]);
        try registry.stake(amount, cfg) {} catch {}
    }

    function requestUnstake(uint256 who) external watchSlashes {
        vm.prank(nodes[who % nodes.length]);
        try registry.requestUnstake() {} catch {}
    }

    /// @dev Not watched: a withdrawn node's stake leaves, it is not slashed.
    function withdrawNode(uint256 who) external {
        address n = nodes[who % nodes.length];
        uint64 unbondingAt = registry.getNode(n).unbondingAt;
        vm.prank(n);
        try registry.withdraw() {
            if (block.timestamp < unbondingAt) leftEarly = true;
        } catch {}
    }

    // --------------------------------------------------------------- verifiers

    function stakeVerifier(uint256 who, uint256 amount) external watchSlashes {
        address v = verifiers[who % verifiers.length];
        amount = bound(amount, 0, token.balanceOf(v));
        vm.prank(v);
        try court.stakeVerifier(amount) {} catch {}
    }

    function requestVerifierUnstake(uint256 who) external watchSlashes {
        vm.prank(verifiers[who % verifiers.length]);
        try court.requestVerifierUnstake() {} catch {}
    }

    function withdrawVerifier(uint256 who) external watchSlashes {
        address v = verifiers[who % verifiers.length];
        IDisputeCourt.VerifierInfo memory info = court.getVerifier(v);
        vm.prank(v);
        try court.withdrawVerifierStake() {
            if (block.timestamp < info.unbondingAt || info.locked != 0) leftEarly = true;
        } catch {}
    }

    // -------------------------------------------------------------------- jobs

    /// @dev A job over the three nodes whose submitter commits to honest receipts over one
    /// to three steps; one in four charges more positions than they prove.
    function submitJob(uint256 who, uint256 shape, uint256 submitter) external watchSlashes {
        uint256 c = who % clients.length;
        IJobMarket.Job memory job = _newJob(clients[c]);
        bytes32 jobHash = market.hashJob(job);
        Commit memory commit = _newCommit(jobHash, shape);
        bytes32 commitment = Receipts.commitment(commit.receipts);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_clientKeys[c], jobHash);
        vm.prank(nodes[submitter % nodes.length]);
        try market.submitResult(job, abi.encodePacked(r, s, v), commit.served, commitment) {
            jobs.push(jobHash);
            _commits[jobHash] = commit;
        } catch {}
    }

    /// @dev As `submitJob`, with hop 1 handed to the spare node from a position up to the
    /// tokens served; the cost must stay within the signed cap plus the spare's replay.
    function submitAmendedJob(uint256 who, uint256 shape, uint256 submitter, uint256 from)
        external
        watchSlashes
    {
        if (nodes.length <= ROUTE) return;
        uint256 c = who % clients.length;
        IJobMarket.Job memory job = _newJob(clients[c]);
        bytes32 jobHash = market.hashJob(job);
        Commit memory commit = _newCommit(jobHash, shape);
        (IJobMarket.Amendment[] memory amendments, bytes[] memory sigs) =
            _amendHop1(c, jobHash, uint32(bound(from, 0, commit.served)));
        bytes memory signature = _signed(c, jobHash);
        bytes32 commitment = Receipts.commitment(commit.receipts);
        vm.prank(nodes[submitter % nodes.length]);
        try market.submitAmended(job, signature, amendments, sigs, commit.served, commitment) {
            jobs.push(jobHash);
            _commits[jobHash] = commit;
            uint256 cap = (uint256(commit.served) * 30 + uint256(amendments[0].fromPosition) * 10)
                * job.maxPricePerToken;
            if (market.getJob(jobHash).cost > cap) amendedOverCap = true;
        } catch {}
    }

    function _amendHop1(uint256 c, bytes32 jobHash, uint32 from)
        internal
        view
        returns (IJobMarket.Amendment[] memory amendments, bytes[] memory sigs)
    {
        amendments = new IJobMarket.Amendment[](1);
        amendments[0] = IJobMarket.Amendment(1, nodes[ROUTE], from);
        sigs = new bytes[](1);
        sigs[0] = _signed(c, market.hashAmendment(jobHash, amendments[0]));
    }

    function _signed(uint256 c, bytes32 digest) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_clientKeys[c], digest);
        return abi.encodePacked(r, s, v);
    }

    function _newJob(address client) internal returns (IJobMarket.Job memory job) {
        job.modelId = MODEL;
        job.route = new address[](ROUTE);
        job.spanStarts = new uint16[](ROUTE);
        job.spanEnds = new uint16[](ROUTE);
        for (uint256 i = 0; i < ROUTE; ++i) {
            job.route[i] = nodes[i];
            job.spanStarts[i] = uint16(10 * i);
            job.spanEnds[i] = uint16(10 * i + 10);
        }
        job.maxTokens = 256;
        job.maxPricePerToken = 1e15;
        job.nonce = ++_nonce;
        job.deadline = uint64(block.timestamp + 1 hours);
        job.client = client;
    }

    function _newCommit(bytes32 jobHash, uint256 shape) internal view returns (Commit memory commit) {
        uint32[] memory positions = Receipts.steps(uint32(bound(shape, 1, 20)), (shape >> 8) % 3);
        commit.receipts = Receipts.chain(jobHash, ROUTE, positions).encode();
        commit.proven = Receipts.total(positions);
        commit.served = (shape >> 16) % 4 == 0 ? commit.proven + uint32(bound(shape >> 24, 1, 8)) : commit.proven;
    }

    function finalize(uint256 which) external watchSlashes {
        if (jobs.length == 0) return;
        bytes32 jobHash = jobs[which % jobs.length];
        try market.finalize(jobHash) {
            _settled(jobHash);
        } catch {}
    }

    /// @dev On a pending job, preferring an over-charged one; with the committed receipts, or
    /// (one in four) a blob missing its last receipt.
    function proveOvercharge(uint256 who, uint256 which, uint256 tamper) external watchSlashes {
        bytes32 jobHash = _pendingJob(which, tamper % 2 == 0);
        if (jobHash == bytes32(0)) return;
        Commit storage commit = _commits[jobHash];
        bytes memory receipts = commit.receipts;
        bool tampered = tamper % 4 == 0;
        if (tampered) receipts = Receipts.slice(receipts, 0, receipts.length - Receipts.BYTES);
        address submitter = market.getJob(jobHash).submitter;
        vm.prank(clients[who % clients.length]);
        try market.proveOvercharge(jobHash, receipts) {
            if (tampered || commit.served <= commit.proven) falseOverchargeProof = true;
            _maySlash = submitter;
            ++overchargeCount;
            _settled(jobHash);
        } catch {}
    }

    // ---------------------------------------------------------------- disputes

    function openDispute(uint256 who, uint256 which, uint256 hop, bool withholding, uint256 bond)
        external
        watchSlashes
    {
        bytes32 jobHash = _pendingJob(which, false);
        if (jobHash == bytes32(0)) return;
        address v = verifiers[who % verifiers.length];
        bond = bound(bond, 15e18, 60e18);
        IDisputeCourt.Kind kind = withholding ? IDisputeCourt.Kind.Withholding : IDisputeCourt.Kind.Fault;
        vm.prank(v);
        try court.openDispute(jobHash, uint8(hop % nodes.length), kind, keccak256("evidence"), bond) {
            disputes.push(jobHash);
        } catch {}
    }

    /// @dev Usually mines the draw block first.
    function drawJury(uint256 which) external watchSlashes {
        bytes32 jobHash = _openDispute(which, IDisputeCourt.Phase.Drawing);
        if (jobHash == bytes32(0)) return;
        uint64 drawBlock = court.getDispute(jobHash).drawBlock;
        if (which % 4 != 0 && block.number <= drawBlock) vm.roll(drawBlock + 1);
        try court.drawJury(jobHash) {} catch {}
    }

    /// @dev Each seated juror that has not committed yet acts on two bits of `votes`: skips
    /// (0), commits reject (1) or commits uphold (2, 3).
    function commitVotes(uint256 which, uint256 votes) external watchSlashes {
        bytes32 jobHash = _openDispute(which, IDisputeCourt.Phase.Voting);
        if (jobHash == bytes32(0)) return;
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        for (uint256 i = 0; i < d.jurors.length; ++i) {
            address juror = d.jurors[i];
            uint256 act = (votes >> (2 * i)) & 3;
            if (act == 0 || court.getBallot(jobHash, juror).commitment != bytes32(0)) continue;
            bool uphold = act >= 2;
            bytes32 salt = keccak256(abi.encode(jobHash, juror, ++_nonce));
            bytes32 commitment = court.voteCommitment(jobHash, d.round, juror, uphold, salt);
            vm.prank(juror);
            try court.commitVote(jobHash, commitment) {
                _votes[jobHash][juror] = Vote({uphold: uphold, salt: salt});
            } catch {}
        }
    }

    /// @dev Each seated juror that has not revealed acts on two bits of `mode`: stays silent
    /// (0), reveals the other vote, which must fail (1), or reveals its vote (2, 3). Bit 8
    /// set: waits for commits to close first.
    function revealVotes(uint256 which, uint256 mode) external watchSlashes {
        bytes32 jobHash = _openDispute(which, IDisputeCourt.Phase.Voting);
        if (jobHash == bytes32(0)) return;
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        if ((mode >> 8) & 1 == 1 && block.timestamp < d.commitEndsAt) vm.warp(d.commitEndsAt);
        for (uint256 i = 0; i < d.jurors.length; ++i) {
            address juror = d.jurors[i];
            uint256 act = (mode >> (2 * i)) & 3;
            if (act == 0) continue;
            Vote memory vote = _votes[jobHash][juror];
            bool lie = act == 1;
            vm.prank(juror);
            try court.revealVote(jobHash, lie ? !vote.uphold : vote.uphold, vote.salt) {
                if (lie) wrongRevealAccepted = true;
            } catch {}
        }
    }

    /// @dev Now and then waits for reveals to close.
    function resolve(uint256 which) external watchSlashes {
        bytes32 jobHash = _openDispute(which, IDisputeCourt.Phase.Voting);
        if (jobHash == bytes32(0)) return;
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        if (which % 3 == 0 && block.timestamp < d.revealEndsAt) vm.warp(d.revealEndsAt);
        try court.resolve(jobHash) {
            _resolved(jobHash, d);
        } catch {}
    }

    /// @dev The first job from `which` on that is still pending (and over-charged, if asked).
    function _pendingJob(uint256 which, bool overchargedOnly) internal view returns (bytes32) {
        uint256 n = jobs.length;
        for (uint256 k = 0; k < n; ++k) {
            bytes32 jobHash = jobs[(which + k) % n];
            if (market.getJob(jobHash).status != IJobMarket.JobStatus.Submitted) continue;
            if (overchargedOnly && _commits[jobHash].served <= _commits[jobHash].proven) continue;
            return jobHash;
        }
        return n == 0 ? bytes32(0) : jobs[which % n];
    }

    /// @dev The first dispute from `which` on in `phase`; any dispute if none is.
    function _openDispute(uint256 which, IDisputeCourt.Phase phase) internal view returns (bytes32) {
        uint256 n = disputes.length;
        for (uint256 k = 0; k < n; ++k) {
            bytes32 jobHash = disputes[(which + k) % n];
            if (court.getDispute(jobHash).phase == phase) return jobHash;
        }
        return n == 0 ? bytes32(0) : disputes[which % n];
    }

    /// @dev Checks the verdict against the votes counted before the call.
    function _resolved(bytes32 jobHash, IDisputeCourt.Dispute memory before) internal {
        IDisputeCourt.Dispute memory d = court.getDispute(jobHash);
        uint256 seats = before.jurors.length;
        IDisputeCourt.Phase expected;
        if (before.revealed >= seats / 2 + 1) {
            expected = uint256(before.upholdVotes) * 2 > before.revealed
                ? IDisputeCourt.Phase.Upheld
                : IDisputeCourt.Phase.Rejected;
        } else {
            expected = before.round == 0 ? IDisputeCourt.Phase.Drawing : IDisputeCourt.Phase.Rejected;
        }
        if (d.phase != expected) wrongVerdict = true;
        if (d.phase == IDisputeCourt.Phase.Drawing) {
            if (d.round != 1) wrongVerdict = true;
            return;
        }
        if (++resolutions[jobHash] > 1) resolvedTwice = true;
        if (d.phase == IDisputeCourt.Phase.Upheld) {
            _maySlash = d.accused;
            ++upheldCount;
            _settled(jobHash);
        } else {
            ++rejectedCount;
        }
    }

    function _settled(bytes32 jobHash) internal {
        settlements[jobHash] += 1;
        if (settlements[jobHash] > 1) settledTwice = true;
    }
}
