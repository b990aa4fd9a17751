// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console} from "hardhat/console.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {JobMarket} from "../JobMarket.sol";
import {IJobMarket} from "../interfaces/IJobMarket.sol";
import {vm} from "./utils/Vm.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";

/// @notice Fixed jobs and their EIP-712 digests for a market at a fixed address on chain
/// 31337. The same vectors live in tests/vectors/job_digests.json for the Python signer.
contract JobVectorsTest is MarketFixture {
    address internal constant FIXED_MARKET = address(uint160(0xC0DE));
    uint256 internal constant CHAIN_ID = 31337;

    JobMarket internal fixedMarket;

    function setUp() public override {
        super.setUp();
        vm.etch(FIXED_MARKET, address(market).code);
        vm.chainId(CHAIN_ID);
        fixedMarket = JobMarket(FIXED_MARKET);
    }

    function _route(uint256 hops, uint16[] memory cuts) internal pure returns (IJobMarket.Job memory job) {
        job.route = new address[](hops);
        job.spanStarts = new uint16[](hops);
        job.spanEnds = new uint16[](hops);
        for (uint256 i = 0; i < hops; ++i) {
            job.route[i] = address(uint160(0x1000 + i));
            job.spanStarts[i] = i == 0 ? 0 : cuts[i - 1];
            job.spanEnds[i] = cuts[i];
        }
    }

    function _vectors() internal pure returns (IJobMarket.Job[3] memory jobs) {
        uint16[] memory cuts = new uint16[](1);
        cuts[0] = 30;
        jobs[0] = _route(1, cuts);
        jobs[0].modelId = keccak256("SmolLM2-135M-Instruct");
        jobs[0].maxTokens = 64;
        jobs[0].maxPricePerToken = 1e12;
        jobs[0].nonce = 1;
        jobs[0].deadline = 1_700_003_600;
        jobs[0].client = address(uint160(0xC11E4));

        cuts = new uint16[](3);
        (cuts[0], cuts[1], cuts[2]) = (10, 20, 30);
        jobs[1] = _route(3, cuts);
        jobs[1].modelId = bytes32(type(uint256).max);
        jobs[1].maxTokens = type(uint32).max;
        jobs[1].maxPricePerToken = 5e11;
        jobs[1].nonce = 2 ** 255 + 7;
        jobs[1].deadline = type(uint64).max;
        jobs[1].client = address(0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF);

        cuts = new uint16[](2);
        (cuts[0], cuts[1]) = (1, 65535);
        jobs[2] = _route(2, cuts);
        jobs[2].modelId = bytes32(uint256(1));
        jobs[2].maxTokens = 1;
        jobs[2].maxPricePerToken = 0;
        jobs[2].nonce = 0;
        jobs[2].deadline = 0;
        jobs[2].client = address(0);
    }

    /// @dev An independent EIP-712 encoding, written out field by field.
    function _reference(IJobMarket.Job memory job) internal pure returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("SharedLLM JobMarket"),
                keccak256("1"),
                CHAIN_ID,
                FIXED_MARKET
            )
        );
        bytes memory route;
        bytes memory starts;
        bytes memory ends;
        for (uint256 i = 0; i < job.route.length; ++i) {
            route = bytes.concat(route, bytes32(uint256(uint160(job.route[i]))));
            starts = bytes.concat(starts, bytes32(uint256(job.spanStarts[i])));
            ends = bytes.concat(ends, bytes32(uint256(job.spanEnds[i])));
        }
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "Job(bytes32 modelId,address[] route,uint16[] spanStarts,uint16[] spanEnds,uint32 maxTokens,uint256 maxPricePerToken,uint256 nonce,uint64 deadline,address client)"
                ),
                job.modelId,
                keccak256(route),
                keccak256(starts),
                keccak256(ends),
                job.maxTokens,
                job.maxPricePerToken,
                job.nonce,
                job.deadline,
                job.client
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function testDigestsMatchTheRecordedVectors() public view {
        IJobMarket.Job[3] memory jobs = _vectors();
        bytes32[3] memory expected = [
            bytes32(0xc2d1c758509ca4b6f00202e0d54fb4038085022a0f1bc88a0cb0125abc9306ea),
            bytes32(0x83fb77d6b50425882f1d0b20de7413020a151d1bccbe4e1f59e910f99df41c9c),
            bytes32(0x5bc71ea83f7680541cc9f3b104aea5b2275787385544db2f40bf694d5b666f80)
        ];
        for (uint256 i = 0; i < 3; ++i) {
            bytes32 digest = fixedMarket.hashJob(jobs[i]);
            console.log("job digest", i);
            console.logBytes32(digest);
            assertEq(digest, _reference(jobs[i]), "matches the written-out encoding");
            assertEq(digest, expected[i], "matches tests/vectors/job_digests.json");
        }
    }

    function testDeployedMarketDomainUsesItsOwnAddressAndChain() public view {
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = fixedMarket.eip712Domain();
        assertEq(keccak256(bytes(name)), keccak256("SharedLLM JobMarket"), "name");
        assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        assertEq(chainId, CHAIN_ID, "chain id");
        assertEq(verifying, FIXED_MARKET, "verifying contract");
    }
}
