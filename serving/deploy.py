"""The deployed pointer: load a version's adapter under its own name, then flip `deployed` in the store.

Free of Slack, so `/ft deploy`, `/ft rollback`, the Approve button and the CLI share it. Each version keeps its
immutable adapter name (vLLM reuses stale prefix cache when a name is reloaded); the version it replaces stays
loaded, so a rollback is a pointer flip, and older retired versions are unloaded.

A version with a warning (`needs_confirming`: the general probe fell too far, core.contract.forgetting_warning)
deploys only when the caller says a person confirmed it; each surface asks its own way (a Block Kit confirm on
Approve, `--yes` on `/ft deploy` and `ft deploy`, or typer.confirm).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from sqlmodel import Session, select

from core.contract import PICKLED_WEIGHTS, VersionMetrics, adapter_files_problem, forgetting_warning
from core.states import VersionStatus
from core.text import clip
from serving.client import AdapterAlreadyLoaded, ModelClient, ModelServerError, ModelServerUnavailable
from serving.smoke import SmokeResult, smoke_test
from storage import Store
from storage.models import ModelVersion, utcnow
from storage.versions import by_name, deployed, deployed_for_update, previous, retired

log = logging.getLogger(__name__)
T = TypeVar("T")

DEPLOYABLE = (VersionStatus.AWAITING_APPROVAL, VersionStatus.RETIRED)


@dataclass
class DeployResult:
    ok: bool
    message: str  # one plain sentence for people: what happened, or why nothing did
    deployed: str | None = None  # the deployed version after the call
    retired: str | None = None  # the version it replaced: the rollback target now
    unloaded: list[str] = field(default_factory=list)  # older retired versions taken off the server
    load_s: float = 0.0  # asking the server to load the adapter
    smoke: SmokeResult | None = None  # the parity check before the pointer flipped
    confirm: str | None = None  # set: nothing changed; a person must confirm this warning, then deploy again


def needs_confirming(version: ModelVersion) -> str | None:
    """The warning a person must confirm before `version` is deployed, or None. One rule for every way to deploy
    (the Approve button, `/ft deploy`, `ft deploy`); a rollback returns to a version deployed before, so it asks
    nothing."""
    return forgetting_warning(VersionMetrics.from_json(version.metrics))


async def deploy(store: Store, model_client: ModelClient, name: str, by: str | None, *,
                 system_prompt: str, confirmed: bool = False) -> DeployResult:
    """Deploy the version `name` (awaiting approval or retired); the deployed one becomes retired.

    Load under its own name → smoke test through the served endpoint, asked with `system_prompt` as
    the bot asks (serving.smoke) → flip the pointer. A failure at any step changes nothing. A version that
    needs confirming (`needs_confirming`) and is not `confirmed` changes nothing either: the result's
    `confirm` carries the warning to ask about.
    """
    version, current, keep = await _db(store, lambda s: (by_name(s, name), _name(deployed(s)), _name(previous(s))))
    if version is None:
        return DeployResult(False, f"There is no version named {name}.", deployed=current)
    if version.status not in DEPLOYABLE:
        return DeployResult(False, _not_deployable(version), deployed=current)
    warning = needs_confirming(version)
    if warning and not confirmed:
        return DeployResult(False, f"{name} needs confirming before it is deployed ({warning}), so nothing changed: "
                                   f"{_still(current)}.", deployed=current, confirm=warning)
    started = time.perf_counter()
    problem = await _load(model_client, version)
    load_s = time.perf_counter() - started
    if problem:
        return DeployResult(False, f"The model server could not load {name} ({problem}), so nothing changed: "
                                   f"{_still(current)}.", deployed=current, load_s=load_s)
    recorded = VersionMetrics.from_json(version.metrics)
    smoke = await smoke_test(model_client, name, recorded.samples, system_prompt=system_prompt,
                             max_tokens=recorded.max_new_tokens)
    if not smoke.ok:
        if name not in (current, keep):  # loaded for this deploy only: it should not hold server memory
            await _unload_quietly(model_client, name)
        return DeployResult(False, f"{name} failed its smoke test, so nothing changed: {_still(current)}. "
                                   f"{smoke.problem}.", deployed=current, load_s=load_s, smoke=smoke)
    problem, was = await _db(store, lambda s: _flip(s, name, by, DEPLOYABLE))
    if problem:
        return DeployResult(False, problem, deployed=await _db(store, lambda s: _name(deployed(s))),
                            load_s=load_s, smoke=smoke)
    unloaded = await _unload_stale(store, model_client)
    kept = f"; {was} is retired and stays loaded for a rollback" if was else ""
    return DeployResult(True, f"{name} is deployed and answers questions from now on{kept}.",
                        deployed=name, retired=was, unloaded=unloaded, load_s=load_s, smoke=smoke)


async def reject(store: Store, name: str, by: str | None) -> DeployResult:
    """An admin's no: a version awaiting approval becomes rejected (its adapter stays on disk)."""

    def decide(session: Session) -> tuple[str | None, str | None]:
        version = session.exec(select(ModelVersion).where(ModelVersion.name == name).with_for_update()).first()
        current = _name(deployed(session))
        if version is None:
            return f"There is no version named {name}.", current
        if version.status != VersionStatus.AWAITING_APPROVAL:
            return f"{name} is {version.status.replace('_', ' ')}; only a version awaiting approval can be " \
                   "rejected.", current
        version.status, version.decided_by, version.decided_at = VersionStatus.REJECTED, by, utcnow()
        return None, current

    problem, current = await _db(store, decide)
    if problem:
        return DeployResult(False, problem, deployed=current)
    return DeployResult(True, f"{name} is rejected; {_still(current)}.", deployed=current)


async def rollback(store: Store, model_client: ModelClient, by: str | None) -> DeployResult:
    """Deploy again the version deployed before the current one; the current one becomes retired."""
    current, target = await _db(store, lambda s: (deployed(s), previous(s)))
    current_name = _name(current)
    if target is None:
        return DeployResult(False, "There is no earlier version to roll back to"
                                   + (f"; {current_name} stays deployed." if current_name else "."),
                            deployed=current_name)
    # Normally still loaded; loading again is a no-op then, and brings it back after a server restart.
    problem = await _load(model_client, target)
    if problem:
        return DeployResult(False, f"The model server could not load {target.name} ({problem}), so nothing "
                                   f"changed: {_still(current_name)}.", deployed=current_name)
    problem, was = await _db(store, lambda s: _flip(s, target.name, by, (VersionStatus.RETIRED,),
                                                   expect_current=current_name))
    if problem:
        return DeployResult(False, problem, deployed=await _db(store, lambda s: _name(deployed(s))))
    unloaded = await _unload_stale(store, model_client)
    kept = f"; {was} is retired and stays loaded, so another rollback returns to it" if was else ""
    return DeployResult(True, f"Rolled back: {target.name} is deployed again{kept}.",
                        deployed=target.name, retired=was, unloaded=unloaded)


def _flip(session: Session, name: str, by: str | None, allowed: tuple[str, ...],
          expect_current: str | None = None) -> tuple[str | None, str | None]:
    """One transaction: `name` deployed, whatever was deployed retired. (problem, retired name)."""
    current = deployed_for_update(session)  # locked: two admins deploying at once take turns
    version = session.exec(select(ModelVersion).where(ModelVersion.name == name).with_for_update()).first()
    # Re-checked under the lock: the version or the pointer may have moved while the adapter loaded.
    if version is None:
        return f"{name} was deleted meanwhile, so nothing changed.", None
    if version.status not in allowed:
        return _not_deployable(version), None
    if expect_current is not None and [v.name for v in current] != [expect_current]:
        return "The deployed version changed meanwhile, so nothing changed; look again and retry.", None
    now = utcnow()
    for old in current:
        old.status = VersionStatus.RETIRED
    version.status, version.deployed_at = VersionStatus.DEPLOYED, now
    version.decided_by, version.decided_at = by, now
    session.flush()
    return None, current[0].name if current else None


async def _load(client: ModelClient, version: ModelVersion) -> str | None:
    """None once the server has the adapter under the version's name; otherwise why not. A pickled adapter is
    refused here, before the server is asked: vLLM would unpickle it."""
    path = Path(version.adapter_path)
    if path.is_dir():  # the bot's host may not mount the adapter store; the server then checks what it can
        problem = adapter_files_problem(path)
        if problem and (path / PICKLED_WEIGHTS).is_file():
            return problem
    try:
        await client.load_adapter(version.name, version.adapter_path)
    except AdapterAlreadyLoaded:
        return None
    except ModelServerError as exc:
        return f"it answered {exc.status}: {clip(exc.message, 200, one_line=True, trim=False)}"
    except ModelServerUnavailable as exc:
        return f"it is unreachable: {clip(str(exc), 200, one_line=True, trim=False)}"
    return None


async def _unload_quietly(client: ModelClient, name: str) -> None:
    try:
        await client.unload_adapter(name)
    except (ModelServerError, ModelServerUnavailable) as exc:
        log.warning("could not unload %s after its failed smoke test: %s", name, exc)


async def _unload_stale(store: Store, client: ModelClient) -> list[str]:
    """Unload retired versions older than the rollback target. Best effort: the deploy already happened."""

    def stale(session: Session) -> list[str]:
        keep = _name(previous(session))
        return [v.name for v in retired(session) if v.name != keep]

    names = await _db(store, stale)
    if not names:
        return []
    try:
        loaded = {card["id"] for card in await client.models() if card.get("parent")}
    except (ModelServerError, ModelServerUnavailable) as exc:
        log.warning("could not list loaded adapters, so none were unloaded: %s", exc)
        return []
    unloaded = []
    for name in names:
        if name not in loaded:
            continue
        try:
            await client.unload_adapter(name)
            unloaded.append(name)
        except ModelServerError as exc:
            if exc.status != 404:  # 404: gone already, which is what we wanted
                log.warning("could not unload %s: %s", name, exc)
        except ModelServerUnavailable as exc:
            log.warning("could not unload %s: %s", name, exc)
            break
    return unloaded


def _not_deployable(version: ModelVersion) -> str:
    if version.status == VersionStatus.DEPLOYED:
        return f"{version.name} is deployed already."
    return (f"{version.name} is {version.status.replace('_', ' ')}; only a version awaiting approval "
            "or a retired one can be deployed.")


def _still(current: str | None) -> str:
    return f"{current} is still deployed" if current else "nothing is deployed, the base model still answers"


def _name(version: ModelVersion | None) -> str | None:
    return version.name if version else None


async def _db(store: Store, fn: Callable[[Session], T]) -> T:
    """One transaction off the event loop."""

    def run() -> T:
        with store.session() as session:
            return fn(session)

    return await asyncio.to_thread(run)
