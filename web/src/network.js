// The network view: the model's layers as a strip, the nodes covering each span, their
// stakes and prices, and recent slashes.
import { ago, assignColours, escapeHtml, nodeColour, share, shortAddress, shortId } from "./format.js";

const CELL = 30;
const ROW = 30;
const TOP = 22;
const LEFT = 0;

export function renderNetwork(net, { strip, nodes, slashes, summary }) {
  const model = net.model;
  const rows = [...net.nodes].sort((a, b) => a.span[0] - b.span[0] || a.span[1] - b.span[1]);
  assignColours(rows.map((n) => n.address));
  strip.innerHTML = stripSvg(model.numLayers, rows, model.coverage);
  nodes.innerHTML = rows.length ? rows.map(nodeCard).join("") : `<li class="muted">No active nodes for this model.</li>`;
  slashes.innerHTML = net.slashes.length
    ? net.slashes.map(slashRow).join("")
    : `<li class="muted calm">No slashes yet: every challenge window has closed quietly.</li>`;
  const totalStake = rows.reduce((sum, n) => sum + BigInt(n.stake), 0n);
  const gaps = model.gaps.length
    ? `<span class="bad-text">${model.gaps.length} gap${model.gaps.length > 1 ? "s" : ""} in coverage</span>`
    : "every layer covered";
  summary.innerHTML = `${rows.length} nodes · ${share(totalStake)} SHARE staked · ${gaps}`;
}

function stripSvg(numLayers, rows, coverage) {
  const width = LEFT + numLayers * CELL;
  const height = TOP + Math.max(rows.length, 1) * ROW + 34;
  const parts = [];
  for (let layer = 0; layer < numLayers; layer++) {
    const x = LEFT + layer * CELL;
    parts.push(`<rect class="lane${layer % 2 ? " odd" : ""}" x="${x}" y="${TOP - 4}" width="${CELL}" height="${height - TOP - 26}"/>`);
    if (layer % 5 === 0 || layer === numLayers - 1) {
      parts.push(`<text class="axis" x="${x + CELL / 2}" y="14" text-anchor="middle">${layer}</text>`);
    }
  }
  rows.forEach((node, i) => {
    const [start, end] = node.span;
    const x = LEFT + start * CELL + 2;
    const y = TOP + i * ROW + 2;
    const w = (end - start) * CELL - 4;
    const colour = nodeColour(node.address);
    const live = node.answers && !node.problem;
    parts.push(`<g class="span${live ? "" : " down"}" data-node="${node.address}">
      <title>${escapeHtml(`${node.address}\nlayers ${start}–${end - 1}\nstake ${share(node.stake)} SHARE\n${node.endpoint}`)}</title>
      <rect x="${x}" y="${y}" width="${w}" height="${ROW - 6}" rx="7" fill="${colour}"/>
      <text x="${x + 10}" y="${y + ROW / 2 + 1}" class="span-label">${shortAddress(node.address)}</text>
      <text x="${x + w - 10}" y="${y + ROW / 2 + 1}" class="span-label right" text-anchor="end">${share(node.stake)} SHARE</text>
    </g>`);
  });
  const covY = height - 24;
  coverage.forEach((count, layer) => {
    const x = LEFT + layer * CELL + 2;
    const cls = count === 0 ? "none" : count === 1 ? "one" : "many";
    parts.push(`<rect class="cov ${cls}" x="${x}" y="${covY}" width="${CELL - 4}" height="18" rx="4"><title>layer ${layer}: ${count} node${count === 1 ? "" : "s"}</title></rect>`);
    parts.push(`<text class="cov-label" x="${x + (CELL - 4) / 2}" y="${covY + 13}" text-anchor="middle">${count}</text>`);
  });
  return `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="The model's ${numLayers} layers and the nodes serving them">${parts.join("")}</svg>
    <div class="strip-legend small muted"><span>the model's ${numLayers} layers, and who serves them (hover for details)</span><span>nodes per layer: <i class="k none"></i>0 <i class="k one"></i>1 <i class="k many"></i>2+</span></div>`;
}

function nodeCard(node) {
  const [start, end] = node.span;
  const layers = end - start;
  const perToken = BigInt(node.pricePerToken) * BigInt(layers);
  const health = node.problem
    ? `<span class="health bad-text" title="${escapeHtml(node.problem)}">● not serving</span>`
    : node.movingTo
      ? `<span class="health warn-text">● moving to layers ${node.movingTo[0]}–${node.movingTo[1] - 1}</span>`
      : node.answers
      ? `<span class="health good-text">● ${node.rttMs} ms</span>`
      : `<span class="health muted">● not probed</span>`;
  return `<li class="node" style="--c:${nodeColour(node.address)}">
    <div class="node-head"><i class="swatch"></i><code title="${node.address}">${shortAddress(node.address)}</code>${health}</div>
    <div class="node-facts">
      <span><b>layers</b> ${start}–${end - 1}</span>
      <span title="the class of device it serves on; verifiers judge its work by it"><b>hardware</b> ${escapeHtml(node.hardware || "-")}</span>
      <span><b>stake</b> ${share(node.stake)} SHARE</span>
      <span title="${node.pricePerToken} wei per position per layer; a position is a prompt or answer token"><b>price</b> ${share(perToken)} SHARE/position</span>
    </div>
    <div class="endpoint muted small">${escapeHtml(node.endpoint)}</div>
  </li>`;
}

function slashRow(slash) {
  return `<li class="slash" style="--c:${nodeColour(slash.node)}">
    <i class="swatch"></i>
    <div><b>${shortAddress(slash.node)}</b> lost <b>${share(slash.slashed)} SHARE</b> of stake
    <div class="muted small">hop ${slash.hop} of job <code title="${slash.jobId}">${shortId(slash.jobId)}</code> · verifiers got ${share(slash.bounty)} SHARE · ${ago(slash.timestamp)}</div></div>
  </li>`;
}
