"""coverage --format html: one self-contained page for a manager or a help desk.

No network: no external script, font, style sheet or image; the funnel is inline SVG drawn to
scale (bar widths proportional to the badge counts). Every value from Credly or the directory
is escaped. Each figure also sits in a `data-` attribute so a test can compare the page with
the JSON output; an inline script marks the page as rendered once it ran.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from credly_connector.identity.outcome import STAGES

if TYPE_CHECKING:
    from credly_connector.diagnostics.coverage import CoverageReport

# What each loss means and how to fix it, in a help desk's words (cause ids as explain-user's).
CAUSE_HELP: dict[str, tuple[str, str]] = {
    "badge_pending": ("Not accepted on Credly yet", "The earner accepts the badge on Credly."),
    "badge_rejected": ("Rejected by the earner", "Only the earner can claim a reissued badge."),
    "badge_revoked": ("Revoked by the issuer", "Nothing, unless the revocation was a mistake."),
    "badge_replaced": ("Replaced by a newer badge", "The replacing badge is the one shown."),
    "badge_unknown_state": ("In a state credlyctl does not know", "Check the badge on Credly."),
    "badge_private": ("Private on Credly", "The earner makes the badge public on Credly."),
    "badge_expired": ("Expired", "The earner renews the credential with the issuer."),
    "badge_no_recipient_email": ("No recipient address", "The issuer reissues the badge."),
    "email_no_user": (
        "Issued to an address no user has",
        "The issuer reissues to the work address, or the earner adds it to their Credly account.",
    ),
    "email_secondary_alias": (
        "Issued to a secondary alias",
        "The issuer reissues to the UPN or primary SMTP address.",
    ),
    "email_several_users": (
        "The address belongs to several users",
        "Keep the address on one user in Entra ID.",
    ),
    "user_disabled": ("The account is disabled", "Enable the account if the person is still here."),
    "user_unlicensed": ("The account has no license", "Assign a license with Exchange Online."),
    "user_opted_out": ("The person opted out", "Nothing, unless the person opts in again."),
    "user_no_mailbox": (
        "The account has no Exchange Online mailbox",
        "Assign a license with Exchange Online, or create the mailbox.",
    ),
    "user_mailbox_unknown": (
        "Could not tell whether the account has a mailbox",
        "Grant User.Read.All so credlyctl can read assignedPlans.",
    ),
    "not_synced_yet": (
        "Not written to the profile yet",
        "Wait for the next crawl, or run credlyctl sync.",
    ),
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1b1b1b}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;
text-align:left}td.n{text-align:right}svg text{font-size:13px;fill:#1b1b1b}
.bar{fill:#2b6cb0}.note{color:#555}
"""

_BAR_WIDTH = 480
_LABEL_WIDTH = 190
_ROW = 26


def _funnel_svg(report: CoverageReport) -> str:
    issued = report.funnel["issued"]
    height = _ROW * len(STAGES) + 4
    width = _LABEL_WIDTH + _BAR_WIDTH + 70
    parts = [
        f'<svg id="funnel" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" role="img" aria-label="Badges reaching each stage">'
    ]
    for row, stage in enumerate(STAGES):
        count = report.funnel[stage]
        bar = round(_BAR_WIDTH * count / issued, 2) if issued else 0
        y = row * _ROW + 2
        label = escape(stage.replace("_", " "))
        parts.append(
            f'<g class="stage" data-stage="{escape(stage)}" data-badges="{count}">'
            f'<text x="0" y="{y + 16}">{label}</text>'
            f'<rect class="bar" x="{_LABEL_WIDTH}" y="{y}" width="{bar}" height="{_ROW - 6}"/>'
            f'<text x="{_LABEL_WIDTH + bar + 6}" y="{y + 16}">{count}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _losses(report: CoverageReport) -> str:
    if not report.causes:
        return '<p class="note">No badge is lost on the way.</p>'
    rows = []
    for cause, count in report.causes.items():
        what, fix = CAUSE_HELP.get(cause, (cause, "Run credlyctl explain-user for a person."))
        rows.append(
            f'<tr class="cause" data-cause="{escape(cause)}" data-badges="{count}">'
            f"<td>{escape(what)}<br><code>{escape(cause)}</code></td>"
            f'<td class="n">{count}</td><td>{escape(fix)}</td></tr>'
        )
    head = "<tr><th>cause</th><th>badges</th><th>fix</th></tr>"
    return f'<table id="losses">{head}{"".join(rows)}</table>'


def _unmatched(report: CoverageReport) -> str:
    if not report.unmatched:
        return '<p class="note">Every recipient address matches a user.</p>'
    rows = []
    for entry in report.unmatched:
        candidate = (
            f"{escape(entry.suggestion)} ({escape(entry.reason or '')})"
            if entry.suggestion
            else "no likely user"
        )
        rows.append(
            f'<tr class="unmatched" data-email="{escape(entry.email)}" '
            f'data-badges="{entry.badges}"><td>{escape(entry.email)}</td>'
            f'<td class="n">{entry.badges}</td><td>{candidate}</td></tr>'
        )
    head = "<tr><th>address on the badge</th><th>badges</th><th>probably</th></tr>"
    return f'<table id="unmatched">{head}{"".join(rows)}</table>'


def render_html(report: CoverageReport) -> str:
    """The page, as one string (UTF-8, no external reference)."""
    issued, synced = report.funnel["issued"], report.funnel["synced"]
    share = f"{100 * synced / issued:.0f}%" if issued else "no badges"
    notes = []
    mailbox = report.mailbox_check
    if mailbox["status"] == "could_not_tell":
        notes.append(f"Mailboxes: could not tell ({mailbox['reason']}).")
    if not report.state_found:
        notes.append("No sync state yet: nothing counts as synced until credlyctl sync ran.")
    note_html = "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
    org = escape(report.org_id)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>Credly badge coverage ({org})</title><style>{_STYLE}</style></head>"
        f'<body data-org="{org}" data-issued="{issued}" data-synced="{synced}">'
        f"<h1>Credly badges on Microsoft 365 profiles: organization {org}</h1>"
        f"<p>{synced} of {issued} badges issued are on profiles ({share}); "
        f"made {escape(report.generated_at.isoformat())}.</p>{note_html}"
        f"<h2>From issued to on profiles</h2>{_funnel_svg(report)}"
        f"<h2>Where badges are lost, and the fix</h2>{_losses(report)}"
        f"<h2>Addresses on badges that match no user</h2>{_unmatched(report)}"
        "<script>document.documentElement.setAttribute('data-rendered',"
        "String(document.querySelectorAll('#funnel g.stage').length));</script>"
        "</body></html>\n"
    )
