"""Benchmark: knowledge gaps (storage.gaps) on Quillmate — are the groups right, which threshold, and what it costs.

1. The questions, each with a known topic:
   - the customer questions of the export's #support threads, each labelled with the fact (quillmate-facts.md) its
     team answer states. The label comes from the answer, never from the question, so the clustering (which reads
     only the questions) cannot have shaped it: the people's replies in the thread (the ✅ one when there is one;
     never the status bot's auto-reply, never the asker's own messages) are compared with each fact's text by
     IDF-weighted word overlap (cosine over the 40 facts' vocabulary); a thread is labelled with the best fact when
     it scores at least LABEL_MIN and LABEL_MARGIN times the runner-up, and left out otherwise (a question the team
     never answered, a bug report, an answer between two facts);
   - bench/offstore_questions.jsonl: product questions no fact answers, each its own topic;
   - the export's #random messages: office chatter, each its own topic (noise).
   Each is stored as the bot stores a declined question in the public #support channel, in turn: a draft-mode
   declined draft (Draft + its Feedback row), an auto-mode hand-off, a declined mention (a Feedback row).
2. The sweep (GAP_THRESHOLD): the questions are embedded once (core.embedder, as find_gaps does) and clustered at
   each threshold. Purity: of the questions in gaps (groups of 2 or more), the share that belongs to its gap's most
   common topic (an own-topic question in a gap counts against it). Completeness: of each fact's questions, the
   largest share that one gap holds (weighted by the fact's size). The default is the threshold with the best
   harmonic mean of the two among those with purity >= 0.8. Baseline in the same run: scikit-learn's HDBSCAN.
3. find_gaps end to end on the stored rows at GAP_THRESHOLD (what `ft gaps` does): purity, completeness, time.
4. Cost: 1,000 distinct questions (the set above, each also with a greeting in front) clustered with
   core.clusters.cluster (median of 3), and find_gaps over 1,000 stored rows (embedding included); scikit-learn's
   import time; peak RSS (resource.getrusage) after each stage.

    .venv/bin/python bench/gaps.py          (OPENBLAS_NUM_THREADS=1 unless set: the machine is shared)
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import collections
import json
import math
import re
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPORT = ROOT.parent / "shared" / "data" / "quillmate-slack-export"
FACTS = ROOT.parent / "shared" / "data" / "quillmate-facts.md"
OFFSTORE = ROOT / "bench" / "offstore_questions.jsonl"
RESULTS = ROOT / "bench" / "results" / "gaps.json"
CHANNEL = "CSUPPORT01"
LABEL_MIN, LABEL_MARGIN = 0.2, 1.5  # a thread's fact: its score, and how far above the runner-up
THRESHOLDS = [round(0.26 + 0.02 * i, 2) for i in range(13)]  # 0.26 … 0.50 (wider ones: purity falls below 0.6)
GREETINGS = ["Hi! ", "Hello team, ", "Quick question: ", "hey, ", "Good morning! "]
STOP = set("the a an and or of to in on at for with by is are be it its this that you your we our can from as per "
           "after before not no yes any all each only than then there their they them which who what when how does "
           "do has have was were will would into out up more less same also other must just".split())


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --- 1. the questions and their topics ---------------------------------------------------------------------------

def _words(text: str) -> set[str]:
    text = re.sub(r"<[^>]+>", " ", text.lower()).replace("&amp;", "&")
    return {w for w in re.findall(r"[a-z0-9][a-z0-9_\-.]*[a-z0-9]|[0-9]", text) if w not in STOP}


def _messages(channel: str) -> list[dict]:
    found = []
    for day in sorted((EXPORT / channel).glob("*.json")):
        found += json.loads(day.read_text())
    return found


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<@[A-Z0-9]+>", "", text)).strip()


def labelled_questions() -> tuple[list[tuple[str, str]], dict[str, int]]:
    """[(question, topic)]: #support questions with the fact their team answer states, then the off-store and
    #random ones, each its own topic; and how many #support threads were left out, by reason."""
    facts = {}
    for line in FACTS.read_text().splitlines():
        m = re.match(r"- \*\*(F\d+) ([^*]+)\*\* — (.*)", line.strip())
        if m:
            facts[m.group(1)] = _words(m.group(2) + " " + m.group(3))
    df = collections.Counter(w for words in facts.values() for w in words)
    idf = {w: math.log(len(facts) / n) for w, n in df.items()}
    unseen = math.log(len(facts))  # a reply word no fact uses: as rare as a word can be
    norm = {f: math.sqrt(sum(idf[w] ** 2 for w in words)) for f, words in facts.items()}
    threads: dict[str, list[dict]] = collections.defaultdict(list)
    for m in _messages("support"):
        threads[m.get("thread_ts") or m["ts"]].append(m)
    out, left = [], collections.Counter()
    for ts, thread in threads.items():
        root = next((m for m in thread if m["ts"] == ts), None)
        if root is None or root.get("subtype") or root.get("bot_id"):
            left["not a person's question"] += 1
            continue
        people = [m for m in thread if m["ts"] != ts and m.get("user") != root.get("user")
                  and not m.get("bot_id") and not m.get("subtype")]
        accepted = [m for m in people if any(r["name"] == "white_check_mark" for r in m.get("reactions", []))]
        reply = _words(" ".join(m["text"] for m in accepted or people))
        if not reply:
            left["no answer from the team"] += 1
            continue
        reply_norm = math.sqrt(sum(idf.get(w, unseen) ** 2 for w in reply))
        scores = sorted(((sum(idf[w] ** 2 for w in words & reply) / (norm[f] * reply_norm), f)
                         for f, words in facts.items()), reverse=True)
        (best, fact), (second, _) = scores[0], scores[1]
        if best >= LABEL_MIN and best >= LABEL_MARGIN * second:
            out.append((_plain(root["text"]), fact))
        else:
            left["answer states no one fact"] += 1
    offstore = [json.loads(line)["question"] for line in OFFSTORE.read_text().splitlines() if line.strip()]
    out += [(q, f"offstore:{i}") for i, q in enumerate(offstore)]
    chatter = [m for m in _messages("random") if (m.get("thread_ts") or m["ts"]) == m["ts"] and not m.get("subtype")]
    out += [(_plain(m["text"]), f"random:{i}") for i, m in enumerate(chatter)]
    return out, dict(left)


# --- 2. how good a grouping is ------------------------------------------------------------------------------------

def grade(groups: list[list[str]], topics: list[str]) -> dict:
    """groups: the topics of each gap's members (gaps of 2 or more only); topics: every question's topic."""
    in_gaps = sum(len(g) for g in groups)
    purity = sum(collections.Counter(g).most_common(1)[0][1] for g in groups) / in_gaps if in_gaps else 1.0
    facts = collections.Counter(t for t in topics if t.startswith("F"))
    best_share = collections.Counter()
    for g in groups:
        for topic, n in collections.Counter(g).items():
            if topic in facts:
                best_share[topic] = max(best_share[topic], n)
    sized = {f: n for f, n in facts.items() if n >= 2}
    complete = sum(best_share[f] for f in sized) / sum(sized.values())
    noise = sum(1 for g in groups for t in g if not t.startswith("F"))
    f1 = 2 * purity * complete / (purity + complete) if purity + complete else 0.0
    return {"gaps": len(groups), "in_gaps": in_gaps, "purity": round(purity, 3), "completeness": round(complete, 3),
            "f1": round(f1, 3), "own_topic_in_gaps": noise,
            "facts_recovered": sum(1 for f in sized if best_share[f] >= 2)}


def groups_of(labels, topics: list[str], min_size: int = 2) -> list[list[str]]:
    members: dict[int, list[str]] = collections.defaultdict(list)
    for label, topic in zip(labels, topics):
        if label >= 0:  # HDBSCAN's -1: noise, in no group
            members[label].append(topic)
    return [g for g in members.values() if len(g) >= min_size]


def sweep(vectors, topics: list[str]) -> tuple[list[dict], dict]:
    from core.clusters import cluster

    rows = [{"threshold": t, **grade(groups_of(cluster(vectors, t), topics), topics)} for t in THRESHOLDS]
    from sklearn.cluster import HDBSCAN

    hdb = HDBSCAN(min_cluster_size=2, metric="cosine", copy=True).fit_predict(vectors)
    return rows, {"method": "HDBSCAN(min_cluster_size=2, cosine)", **grade(groups_of(hdb, topics), topics)}


def choose(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["purity"] >= 0.8] or rows
    return max(ok, key=lambda r: (r["f1"], -r["threshold"]))


# --- 3. the bot's rows, and find_gaps over them -------------------------------------------------------------------

def store_declined(store, questions: list[str]) -> dict[str, int]:
    """Each question as the bot stores a declined one, in turn: a draft-mode card, an auto-mode hand-off, a mention.
    Returns each row's ref (storage.gaps) -> the question's index (stored text is redacted, so not the key)."""
    from core.states import ChannelKind, ChannelMode, DraftStatus
    from storage import audience, drafts, feedback
    from storage.models import utcnow

    now, refs = utcnow(), {}
    with store.session() as s:
        audience.remember(s, CHANNEL, ChannelKind.PUBLIC, "support")
        for i, question in enumerate(questions):
            ts, user, asked = f"{1_790_000_000 + i}.000100", f"UASK{i:05d}", now - timedelta(minutes=5 * i)
            where = {"channel": CHANNEL, "thread_ts": ts, "ts": ts}
            if i % 3 == 2:
                row = feedback.record(s, question=question, answer="", user=user, version_name=None, source=where,
                                      declined=True)
                row.created_at = asked
                refs[f"feedback:{row.id}"] = i
                continue
            mode = ChannelMode.DRAFT if i % 3 == 0 else ChannelMode.AUTO
            d = drafts.open_draft(s, mode=mode, channel_id=CHANNEL, question_ts=ts, asker=user, question=question,
                                  asked_at=asked)
            fb = feedback.record(s, question=question, answer="", user=user, version_name=None,
                                 source={**where, "draft_id": d.id, "mode": mode}, declined=True)
            drafts.record_answer(s, d.id, status=DraftStatus.PENDING if mode == ChannelMode.DRAFT else
                                 DraftStatus.HANDED_OFF, answer="", model_answer="I don't know.", declined=True,
                                 grounding={}, context=[], prompt=[], version_name=None, model="base",
                                 feedback_id=fb.id)
            refs[f"draft:{d.id}"] = i
    return refs


def end_to_end(embedder, questions: list[str]) -> tuple[list, dict[str, int], float, float]:
    """find_gaps over the questions stored as declined rows in a scratch SQLite store: (gaps, refs, wall seconds,
    CPU seconds)."""
    from storage import open_store
    from storage.gaps import find_gaps
    from storage.models import utcnow

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'gaps.db'}")
        refs = store_declined(store, questions)
        started, cpu = time.perf_counter(), time.process_time()
        with store.session() as s:
            found = find_gaps(s, embedder, since=utcnow() - timedelta(days=7))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        store.close()
    return found, refs, seconds, cpu


def clustering_memory(vectors) -> dict:
    """Peak RSS of a fresh process that holds only the vectors, then imports scikit-learn, then clusters them: what
    clustering adds, apart from the embedder (whose own peak hides it in this process). Linux only (/proc)."""
    import subprocess

    import numpy as np

    # Its peak is VmHWM: Linux carries ru_maxrss across exec, so getrusage in the child would report ours.
    code = ("import re, sys, numpy as np; from core.clusters import cluster; from storage.gaps import GAP_THRESHOLD\n"
            "r = lambda: round(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)\n"
            "v = np.load(sys.argv[1]); a = r(); import sklearn.cluster; b = r(); cluster(v, GAP_THRESHOLD)\n"
            "print(a, b, r())")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        np.save(path, vectors)
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                             cwd=ROOT).stdout.split()
    before, imported, clustered = map(int, out)
    return {"numpy and the vectors": before, "after importing scikit-learn": imported, "after clustering": clustered}


# --- the run ------------------------------------------------------------------------------------------------------

def main() -> None:
    if not EXPORT.is_dir() or not FACTS.is_file():
        print(f"skipped: the Quillmate export is not here ({EXPORT}); it lives in /work/shared/data")
        return
    from core.embedder import Embedder
    from storage.gaps import GAP_THRESHOLD

    report: dict = {"rss_mib": {"start": round(rss_mib())}}
    items, left = labelled_questions()
    questions, topics = [q for q, _ in items], [t for _, t in items]
    n_fact = sum(1 for t in topics if t.startswith("F"))
    print(f"{len(items)} questions: {n_fact} from #support threads labelled with {len(set(topics[:n_fact]))} facts "
          f"(left out: {left}), {sum(t.startswith('offstore') for t in topics)} off-store, "
          f"{sum(t.startswith('random') for t in topics)} #random")
    embedder = Embedder()
    vectors = embedder.embed(questions)
    report["rss_mib"]["embedder"] = round(rss_mib())
    t, c = time.perf_counter(), time.process_time()
    from sklearn.cluster import AgglomerativeClustering  # noqa: F401  (timed: the first gaps run in a process pays it)
    report["sklearn_import_s"] = round(time.perf_counter() - t, 2)
    report["sklearn_import_cpu_s"] = round(time.process_time() - c, 2)
    report["rss_mib"]["sklearn"] = round(rss_mib())

    rows, hdbscan = sweep(vectors, topics)
    print("\nthreshold  gaps  in gaps  purity  completeness  F1     facts recovered  own-topic in gaps")
    for r in rows:
        print(f"  {r['threshold']:.2f}     {r['gaps']:4d}  {r['in_gaps']:7d}  {r['purity']:.3f}   "
              f"{r['completeness']:.3f}        {r['f1']:.3f}  {r['facts_recovered']:15d}  {r['own_topic_in_gaps']:17d}")
    print(f"baseline {hdbscan}")
    chosen = choose(rows)
    print(f"best by the rule (purity >= 0.8, then F1): {chosen['threshold']}; GAP_THRESHOLD is {GAP_THRESHOLD}")

    found, refs, seconds, cpu = end_to_end(embedder, questions)
    groups = [[topics[refs[q.ref]] for q in g.questions] for g in found]
    e2e = {**grade(groups, topics), "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)}
    print(f"find_gaps on the stored rows at {GAP_THRESHOLD}: {e2e}")
    print("largest gaps:", [(g.size, collections.Counter(grp).most_common(1)[0][0], g.examples[0])
                            for g, grp in zip(found[:5], groups[:5])])

    many = (questions + [g + q[:1].lower() + q[1:] for g in GREETINGS for q in questions])[:1000]
    t, c = time.perf_counter(), time.process_time()
    big = embedder.embed(many)
    report["embed_1000_s"], report["embed_1000_cpu_s"] = round(time.perf_counter() - t, 1), round(
        time.process_time() - c, 1)
    report["clustering_memory_mib"] = clustering_memory(big)
    from core.clusters import cluster

    times, cpus = [], []
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        cluster(big, GAP_THRESHOLD)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    report["rss_mib"]["after clustering 1000"] = round(rss_mib())
    _, _, e2e_1000, e2e_1000_cpu = end_to_end(embedder, many)
    report["rss_mib"]["after find_gaps over 1000 rows"] = round(rss_mib())
    report.update({"questions": len(items), "fact_questions": n_fact, "left_out": left, "sweep": rows,
                   "hdbscan": hdbscan, "chosen": chosen, "gap_threshold": GAP_THRESHOLD, "end_to_end": e2e,
                   "cluster_1000_s": round(statistics.median(times), 3),
                   "cluster_1000_cpu_s": round(statistics.median(cpus), 3), "find_gaps_1000_s": round(e2e_1000, 2),
                   "find_gaps_1000_cpu_s": round(e2e_1000_cpu, 2), "load_average": os.getloadavg()})
    print(f"cluster 1,000 questions: {report['cluster_1000_s']} s wall, {report['cluster_1000_cpu_s']} s CPU (median "
          f"of 3); find_gaps over 1,000 stored rows (embedding included): {report['find_gaps_1000_s']} s wall, "
          f"{report['find_gaps_1000_cpu_s']} s CPU; scikit-learn import: {report['sklearn_import_s']} s; "
          f"load average {report['load_average'][0]:.1f} on {os.cpu_count()} cores")
    print(f"embedding the 1,000 (core.embedder, as find_gaps does): {report['embed_1000_s']} s wall, "
          f"{report['embed_1000_cpu_s']} s CPU")
    print(f"peak RSS of this process (MiB) after each stage: {report['rss_mib']}")
    print(f"clustering alone, in a fresh process (peak RSS, MiB): {report['clustering_memory_mib']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"written: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
