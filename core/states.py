"""Every status and outcome ftbot stores, returns or compares, as one StrEnum each, in this one module.

A member is its string: `ExampleStatus.APPROVED == "approved"`, and str(), format() and f-strings give the value,
so the database (columns stay `str`), JSON, metrics labels and Slack text read exactly as plain strings would.
Compare against members, never against the literal. `"x" in ExampleStatus` raises TypeError on Python 3.11 for a
string that is not a member: test membership with `in tuple(ExampleStatus)`.
"""

from __future__ import annotations

from enum import StrEnum

# --- the tables' states (storage.models) -----------------------------------------------------------------------


class ExampleStatus(StrEnum):
    """A labelled pair's curation: a candidate until a curator approves or rejects it."""

    CANDIDATE = "candidate"
    APPROVED = "approved"
    REJECTED = "rejected"


class ExampleSource(StrEnum):
    """Where an example came from (Example.source["kind"])."""

    SLACK = "slack"              # a Slack thread: a reaction, the message shortcut or an export
    JSONL = "jsonl"              # `ft examples import`
    DRAFT = "draft"              # a draft an agent sent or edited (draft mode)
    FEEDBACK = "feedback"        # a correction to a 👎 answer
    UNANSWERED = "unanswered"    # a curator's answer to a question the bot declined


class JobStatus(StrEnum):
    """A training job: queued → running (lease + heartbeat) → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class VersionStatus(StrEnum):
    """A trained adapter: awaiting an admin's approval → deployed → retired, or rejected."""

    AWAITING_APPROVAL = "awaiting_approval"
    DEPLOYED = "deployed"
    RETIRED = "retired"
    REJECTED = "rejected"


class ChannelMode(StrEnum):
    """How the bot behaves in a channel (the ladder): off, answer when mentioned, draft for the team, answer alone."""

    OFF = "off"
    MENTION = "mention"
    DRAFT = "draft"
    AUTO = "auto"
    DEFAULT = MENTION  # an alias, not a fifth mode


class ChannelKind(StrEnum):
    """Who can read a channel: its knowledge follows that wall (unknown counts as private)."""

    PUBLIC = "public"
    PRIVATE = "private"
    DM = "dm"
    SHARED = "shared"  # Slack Connect: people of another organisation read it
    UNKNOWN = "unknown"


class DraftStatus(StrEnum):
    """A question in a draft or auto channel, and what became of the bot's answer to it."""

    PENDING = "pending"          # draft: the card waits for an agent
    SENDING = "sending"          # draft: an agent pressed Send; posting (only one press wins)
    SENT = "sent"                # draft: sent unchanged
    EDITED = "edited"            # draft: sent after an agent's edit
    DISCARDED = "discarded"      # draft: an agent discarded it, with a reason
    SUPERSEDED = "superseded"    # draft: a team member answered in the thread by hand first
    EXPIRED = "expired"          # draft: nobody acted within FT_DRAFT_TTL_H
    ANSWERED = "answered"        # auto: the bot answered in the thread
    HANDED_OFF = "handed_off"    # auto: the bot declined, told the asker, and handed off to the team
    FAILED = "failed"            # the model server gave no answer


# Drafts still waiting for an agent (not a status of its own).
OPEN_DRAFTS = (DraftStatus.PENDING, DraftStatus.SENDING)


class DiscardReason(StrEnum):
    """Why an agent discarded a draft (asked on Discard; counted per channel and version)."""

    WRONG = "wrong"
    OUTDATED = "outdated"
    NOT_A_QUESTION = "not_a_question"
    OTHER = "other"


class PreferenceKind(StrEnum):
    """What made a preference record (storage.preferences): the team's text is chosen, the bot's rejected."""

    EDITED = "edited"                                    # an agent's Edit & send of a draft
    DISCARDED_THEN_ANSWERED = "discarded_then_answered"  # a draft discarded as wrong, then answered in the thread
    CORRECTED = "corrected"                              # a 👎 on the bot's answer with the right answer


class ModeProblem(StrEnum):
    """Why a channel's mode change was refused (storage.channels; the bot and `ft channels set` each say it in
    their own words)."""

    NEEDS_DRAFTS_CHANNEL = "needs_drafts_channel"
    SAME_CHANNEL = "same_channel"  # the drafts channel is the customers' channel
    NOT_EARNED = "not_earned"      # auto mode, without the record it asks for and without --confirm


class Rating(StrEnum):
    """A Feedback row's rating of the bot's answer."""

    UP = "up"
    DOWN = "down"
    NONE = "none"  # not rated, or the model did not answer


# --- what an action came to --------------------------------------------------------------------------------------


class CurationOutcome(StrEnum):
    """What a curator's decision on one example came to (bot.curation)."""

    DONE = "done"
    STALE = "stale"  # someone decided it first
    GONE = "gone"    # deleted meanwhile
    CLASH = "clash"  # the edit would duplicate another stored pair


class WithdrawOutcome(StrEnum):
    """What taking a ✅ label back came to (storage.examples.withdraw)."""

    WITHDRAWN = "withdrawn"
    NOT_FOUND = "not_found"
    NOT_LABELLER = "not_labeller"
    IN_SNAPSHOT = "in_snapshot"  # a snapshot used it: kept


class ChangeOutcome(StrEnum):
    """What a message edited or deleted in Slack did to the example behind it (bot.changes, storage.examples.revise)."""

    WITHDRAWN = "withdrawn"    # deleted, or no longer a pair: rejected
    REVISED = "revised"        # new text, back to the curators
    UNCHANGED = "unchanged"    # same text, or already withdrawn
    DUPLICATE = "duplicate"    # the new text is another stored pair's: withdrawn
    UNREADABLE = "unreadable"  # the thread could not be read again
    GONE = "gone"              # the example was deleted meanwhile


class AnswerOutcome(StrEnum):
    """What asking the model for one question came to (bot.asking; the answers metric's label)."""

    OK = "ok"
    DECLINED = "declined"        # the grounding check, or the model, said it does not know
    UNAVAILABLE = "unavailable"  # the model server did not answer
    ERROR = "error"              # it answered with an error, an empty or a malformed reply


class JobPhase(StrEnum):
    """Where a running job is (core.contract.JobProgress.phase)."""

    TRAINING = "training"
    EVALUATING = "evaluating"
    PREFERENCE = "preference"  # the preference stage after SFT: its training, then its evaluation (trainer.preference)


class JobOutcome(StrEnum):
    """How a worker's run of one job ended (trainer.worker): the job's status, or LOST."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    QUEUED = "queued"  # stopped before its end: back in the queue, resumes from its checkpoint
    LOST = "lost"      # the lease could not be kept: another worker may hold the job now


class LiveOutcome(StrEnum):
    """What a version would send for a live question, against what the team sent (trainer.live)."""

    AGREES = "agrees"        # states the numbers, codes or names the team's answer states
    OTHER = "other"          # states something else
    DECLINED = "declined"    # would say it does not know
    UNCHECKED = "unchecked"  # the team's answer has nothing to compare


class GroundingReason(StrEnum):
    """Why the grounding check (core.grounding) sends an answer, or declines it."""

    GROUNDED = "grounded"
    NO_CONTEXT = "no_context"            # nothing was retrieved
    MODEL_DECLINED = "model_declined"    # the model said it does not know
    UNSUPPORTED = "unsupported"          # no retrieved answer states the answer's key items
    WEAK_SOURCE = "weak_source"          # the answer's source is too far from the question
    FAR_FROM_BEST = "far_from_best"      # the source is far below the best hit: a neighbour's policy
