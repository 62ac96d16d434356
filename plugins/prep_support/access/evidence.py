"""The evidence pack of a campaign: the files an auditor asks for, and a SHA-256 manifest of them.

Files: the population as read (one canonical CSV per source: its hash is the snapshot manifest's),
``snapshot_manifest.json``, ``findings.csv``, ``decisions.csv`` (every item with who, when, why),
``remediation.json`` (before/after states and verification), ``summary.html``, and
``manifest.json``: name, size and SHA-256 of each of those files. Building it again gives the
same bytes for the same database state (sorted rows, no timestamps of its own).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from prep_support.access import packets
from prep_support.access.findings import load_findings, summarise
from prep_support.access.remediation import results
from prep_support.access.review import DEFAULT_RESPONDER, load_items
from prep_support.access.snapshot import canonical_csv, load_snapshot, manifest_of
from prep_support.schema import AccessCampaignRow

DECISION_COLUMNS = ("item_id", "system", "account_id", "username", "display_name", "subject", "group_name",
                    "action", "kinds", "reviewer", "routed_by", "decision", "decided_by", "decided_at", "comment")


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    content: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def build_pack(engine: Engine, campaign_id: str) -> list[EvidenceFile]:
    """Every evidence file of the campaign, the manifest last."""
    with engine.connect() as connection:
        campaign = connection.execute(select(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id)).one()
    sources = manifest_of(engine, campaign_id)
    files: list[EvidenceFile] = []
    for source in sources:
        system_kind = source["source"].split(".")
        kind = system_kind[1]
        frame = load_snapshot(engine, campaign_id, kind)
        if kind in ("accounts", "memberships"):
            frame = frame.loc[frame["system"] == system_kind[0]]
        files.append(EvidenceFile(f"population/{source['source']}.csv", canonical_csv(frame, kind), "text/csv"))
    files.append(EvidenceFile("snapshot_manifest.json", _json(sources), "application/json"))
    findings = load_findings(engine, campaign_id)
    files.append(EvidenceFile("findings.csv", findings.to_csv(index=False, lineterminator="\n").encode(), "text/csv"))
    items = load_items(engine, campaign_id)
    files.append(EvidenceFile("decisions.csv", _decisions_csv(items), "text/csv"))
    remediation = results(engine, campaign_id)
    files.append(EvidenceFile("remediation.json", _json(remediation), "application/json"))
    context = summary_context(campaign, sources, summarise(findings), items, remediation, files)
    files.append(EvidenceFile("summary.html", packets.render("access/summary.html.j2", **context).encode(),
                              "text/html"))
    manifest = [{"name": f.name, "bytes": len(f.content), "sha256": f.sha256} for f in files]
    files.append(EvidenceFile("manifest.json", _json({"campaign": campaign_id, "started_by": started_by(campaign),
                                                      "files": manifest}),
                              "application/json"))
    return files


def started_by(campaign: Any) -> str:
    """Who started the campaign's run (a username, or "system"); campaigns from before it was kept: not recorded."""
    return campaign.started_by or "not recorded"


def summary_context(campaign: Any, sources: list[dict[str, Any]], findings: dict[str, int],
                    items: list[dict[str, Any]], remediation: list[dict[str, Any]],
                    files: list[EvidenceFile]) -> dict[str, Any]:
    per_reviewer: dict[str, Counter] = {}
    for item in items:
        counts = per_reviewer.setdefault(item["reviewer"], Counter())
        counts["items"] += 1
        counts[item["decision"] or "undecided"] += 1
        counts["defaulted"] += item["decided_by"] == DEFAULT_RESPONDER
    return {
        "campaign_id": campaign.id, "run_id": campaign.run_id, "as_of": campaign.as_of.isoformat(),
        "started_by": started_by(campaign),
        "sources": sources, "findings": findings,
        "reviewers": [{"reviewer": name, "count": c["items"], "keep": c["keep"], "revoke": c["revoke"],
                       "defaulted": c["defaulted"]} for name, c in sorted(per_reviewer.items())],
        "remediations": remediation,
        "files": [{"name": f.name, "bytes": len(f.content), "sha256": f.sha256} for f in files],
    }


def page_body(engine: Engine, campaign_id: str, files: list[EvidenceFile]) -> str:
    """The Confluence page (storage format): the summary, autoescaped."""
    with engine.connect() as connection:
        campaign = connection.execute(select(AccessCampaignRow).where(AccessCampaignRow.id == campaign_id)).one()
    sources = manifest_of(engine, campaign_id)
    findings = summarise(load_findings(engine, campaign_id))
    context = summary_context(campaign, sources, findings, load_items(engine, campaign_id),
                              results(engine, campaign_id), files)
    return packets.render("access/summary_body.html.j2", **context)


def summary_counts(engine: Engine, campaign_id: str) -> dict[str, Any]:
    items = load_items(engine, campaign_id)
    remediation = results(engine, campaign_id)
    return {
        "items": len(items), "reviewers": len({i["reviewer"] for i in items}),
        "kept": sum(i["decision"] == "keep" for i in items), "revoked": sum(i["decision"] == "revoke" for i in items),
        "defaulted": sum(i["decided_by"] == DEFAULT_RESPONDER for i in items),
        "verified": sum(bool(r["verified"]) for r in remediation),
        "findings": summarise(load_findings(engine, campaign_id)),
    }


def write_pack(files: list[EvidenceFile], directory: Path) -> list[str]:
    """Write the files under ``directory`` (replacing an earlier pack of the campaign)."""
    written = []
    for file in files:
        target = directory / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".tmp")
        temporary.write_bytes(file.content)
        temporary.replace(target)
        written.append(str(target))
    return written


def verify_manifest(files: list[EvidenceFile]) -> list[str]:
    """Names whose content does not match manifest.json (empty when the pack is intact)."""
    manifest = json.loads(next(f for f in files if f.name == "manifest.json").content)
    by_name = {f.name: f for f in files}
    return [entry["name"] for entry in manifest["files"]
            if entry["name"] not in by_name or by_name[entry["name"]].sha256 != entry["sha256"]]


def _decisions_csv(items: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DECISION_COLUMNS)
    for item in sorted(items, key=lambda i: i["item_id"]):
        row = {**item, "kinds": " ".join(item["kinds"]),
               "decided_at": item["decided_at"].isoformat() if item["decided_at"] else ""}
        writer.writerow([packets.csv_cell(row[c]) for c in DECISION_COLUMNS])
    return buffer.getvalue().encode()


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


