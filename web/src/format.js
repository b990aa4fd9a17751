// Amounts, addresses and colours as the page shows them.
import { formatUnits, parseUnits } from "ethers";

export const DECIMALS = 18;

/**
 * Wei (bigint or decimal string) as SHARE: at most `digits` decimals above 1, and at least
 * `digits` significant digits below 1, so a job's cost never shows as 0.
 */
export function share(wei, digits = 6) {
  const text = formatUnits(BigInt(wei), DECIMALS);
  const [whole, frac = ""] = text.split(".");
  if (!frac.replace(/0+$/, "")) return whole;
  if (whole !== "0") return `${whole}.${frac.slice(0, digits).replace(/0+$/, "")}`.replace(/\.$/, "");
  const lead = frac.match(/^0*/)[0].length;
  return `0.${frac.slice(0, lead + digits).replace(/0+$/, "")}`;
}

export function parseShare(text) {
  const value = String(text).trim();
  if (!/^\d*(\.\d{0,18})?$/.test(value) || value === "" || value === ".") {
    throw new Error(`"${text}" is not an amount of SHARE`);
  }
  return parseUnits(value, DECIMALS);
}

export function shortAddress(address) {
  return address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "";
}

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : "";
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

export function ago(seconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const PALETTE = [
  "#7c9cff", "#47d6b6", "#ffb86b", "#f478b5", "#b48cff",
  "#6fd3ff", "#e8d36a", "#ff7d7d", "#8be28b", "#c9a27e",
];
const assigned = new Map();

/** One colour per node address, the same in the strip, the node list and the chat routes. */
export function nodeColour(address) {
  const key = (address || "").toLowerCase();
  if (!assigned.has(key)) assigned.set(key, PALETTE[assigned.size % PALETTE.length]);
  return assigned.get(key);
}

/** Give nodes their colours in layer order, so the strip reads as a gradient of owners. */
export function assignColours(addresses) {
  for (const a of addresses) nodeColour(a);
}
