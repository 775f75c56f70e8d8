"""The embedded English recognizer: pocketsphinx 5 with the model in its wheel.

Audio path: 8 kHz s16le -> ``media_core.resample.Resampler`` (8 -> 16 kHz,
streaming; the en-us acoustic model is 16 kHz and ``samprate=8000`` fails) ->
``Decoder.process_raw``. The resampler delays the signal by
``delay_samples``; ``finish`` pushes that much silence through so the last
word is not cut, and word times are shifted back by the delay.

Search per ``RecognitionContext``:

* ``grammar`` -> a JSGF grammar (closed set, ``grammar_jsgf``);
* ``phrases`` -> a trigram LM built by ``language_model.build_arpa``;
* neither -> the bundled general en-us LM (free decoding, poor on telephone
  audio: ~42 % WER measured).

Compiled LMs are cached per context in the engine (shared by every decoder
of the process); each pocketsphinx decoder adds a context's search once and
then only switches to it. Words missing from cmudict get phones from
``pronounce`` (compound split, then espeak-ng) via ``add_word`` before the
search is added; a word with no pronunciation is dropped with a warning.

Confidence: with ``bestpath`` (on by default) pocketsphinx computes word
posteriors on the lattice after ``end_utt``. ``Segment.prob`` in the Python
binding is already ``logmath.exp`` of the log posterior, a probability in
0..1, used as the word's confidence. The utterance's confidence is the mean
of its words' (0 when nothing was recognized). Partials carry seg() words
whose posteriors are not computed yet (pocketsphinx reports 1.0).

N-best: a final hypothesis carries up to ``NBEST`` distinct runner-up texts
from the lattice (``Decoder.nbest()``) in ``Hypothesis.alternatives``;
``ivr.intents.IntentMatcher.match_best`` lets them vote when the best text
matches no intent surely (telephone hibari audio: +2..4 calls in 53-74).
``options`` passes pocketsphinx settings (beams, ``lw``...) through; the
defaults are pocketsphinx's own (``lw`` 8 and 10 measured worse than 6.5).

CMN (cepstral mean normalisation) decides most of what telephone audio
loses. A decoder made with ``partials=False`` (the IVR, post-call
transcription) holds an utterance's audio back until it has ``CMN_HOLD_S`` of
it (or the utterance ends), sets the cepstral mean of the call's latest
``CMN_WINDOW_S`` of utterance audio (measured by a batch-CMN estimator
decoder, ``PocketsphinxEngine.cepstral_mean``; blended with ``CMN_INIT``
below ``CMN_PRIOR_S``) and only then decodes, catching up at ~10x real time.
Its digital silence is filled with line noise first (``LINE_NOISE_RMS``).
With ``partials=True`` (the live transcript) decoding starts at once from
``CMN_INIT`` and ``cmn=live`` adapts the mean across the call's utterances.
Holding the GIL throughout, this engine belongs in worker processes.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import os
import re
import tempfile
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pocketsphinx  # type: ignore[import-untyped]
from numpy.typing import NDArray

from asr.engine import RATE_HZ, RecognitionContext
from asr.grammar_jsgf import build_jsgf, grammar_words
from asr.language_model import SENTENCE_END, SENTENCE_START, build_arpa, words_of
from asr.pronounce import pronounce
from asr.results import Hypothesis, Word
from media_core.resample import Resampler

__all__ = ["CMN_INIT", "PocketsphinxDecoder", "PocketsphinxEngine"]

log = logging.getLogger(__name__)

DECODER_RATE_HZ = 16000
FRAMES_PER_S = 100  # pocketsphinx's frame rate (10 ms shift)
# Telephone-band cepstral mean to start from (see the module docstring): the mean
# live CMN settled on after hospital phrases over 8 kHz mu-law, rounded. The
# wheel's "40,3,-1" got the first utterance of a call wrong ("i have a need").
CMN_INIT = "45,20,-25,20,-10,-5,10,-5,10,-5,0,5,-5"
# How much of an utterance sets its own cepstral mean (partials=False). Routed of the
# dev corpus's hibari and flite-rms calls (106) / dev and held-out wordings (307),
# each utterance decoded as a call's first, from 0.3 s before its speech: CMN_INIT
# 95, the first 1.0 s 101/258, 1.5 s 101/255, 2.0 s 103/259, 3.0 s 102/258, the
# whole utterance 103/261. Waiting costs an utterance shorter than this its decoding
# time (~0.1 s a second) after it ends; a longer one is caught up while it goes on.
CMN_HOLD_S = 2.0
CMN_MIN_S = 0.25  # less audio than this keeps CMN_INIT: too few frames for a mean
# ... and below this much, the measured mean is blended with CMN_INIT in proportion:
# alone, a lone "yes" between digital silence came back "that's". Routed (as for
# LINE_NOISE_RMS below): none 234/254 and 309/381, 1.5 s 234/254 and 310/381; the
# blend over the whole window instead (w = s / (s + 0.5)) 230/254, 309/381.
CMN_PRIOR_S = 1.5
# ... measured over the call's latest utterance audio, so a short answer ("yes") is
# normalised by what the same caller on the same line said before it as well.
CMN_WINDOW_S = 4.0
_WINDOW_SAMPLES = round(CMN_WINDOW_S * DECODER_RATE_HZ)
# Digital silence (a VoIP leg's zeros; every TTS caller of the tests) has no spectrum:
# normalised by a speech mean, its frames looked like phones and a flite "yes" came
# back "that's" 25 times in 127. A finals-only decoder fills it with a line's noise
# floor (seeded per utterance). First utterances / the "yes" after them routed, dev
# and held-out wordings, hibari and flite-rms (254), then three further flite voices
# (381): as is 231/229, 312/358; noise over everything 235/251, 307/381; only in
# digital silence 234/254, 309/381.
LINE_NOISE_RMS = 30.0  # -61 dBFS
_SILENCE_BLOCK = 80  # 10 ms at 8 kHz
_DEFAULT_SEARCH = "default"
# A global frequency warp (-warp_type inverse_linear, 1.1) helped the two tuning voices
# (+5 of 254) and hurt three flite voices it was not tuned on (-5 of 381): not used.
DECODER_OPTIONS: dict[str, object] = {}
_WORD_ONLY = re.compile(r"[a-z]+(?:'[a-z]+)*")
NBEST = 8  # alternatives a final hypothesis carries
# Everyday English a phrase LM admits when its context asks (general_english > 0).
# Routed of 635 telephone utterances (dev + held-out wordings, five TTS voices) as
# words @ share: none 526, 2,000 @ 0.1 538, 2,000 @ 0.2 544, 3,000 @ 0.1 536,
# 5,000 @ 0.3 536.
BACKGROUND_WORDS = 2000
# ... and general English's bigrams among the context's words (phrase words included),
# interpolated at the same share. dev/held/xdev/xheld of 106/148/159/222, routed:
# unigrams only 99/125/141/178 = 543; bigrams beating backoff 3x 550 (~390k bigrams),
# 1.5x 552 (~450k), 1.5x and p >= 0.001 99/128/144/178 = 549 (~165k, kept: a smaller
# LM decodes faster); 3x at share 0.35 543; bigrams among the 2,000 common words only
# (not the phrase words) 542; 1.5x, p >= 0.001, a phrase history giving the background
# share x its backoff weight (build_arpa) 98/125/143/183 = 549. Off: within noise of
# unigrams only, ~6 s more to compile an open question, and every setting turned the
# en_chest fixture's "my chest hurts" into "my cat hurting".
BIGRAM_MIN_GAIN: float | None = None
BIGRAM_MIN_PROB = 0.001
_LOG_BASE = 1.0001  # pocketsphinx's log-math base: NGramModel.prob answers in it
_UNKNOWN_SCORE = -536870912  # NGramModel.prob of a word outside its vocabulary
_NBEST_SCAN = 40  # n-best entries read to find them (many differ only in fillers)
_CACHE_CONTEXTS = 64  # compiled contexts kept per engine (and searches per decoder)
_MAX_VARIANTS = 9  # cmudict lists at most a handful of (n) variants


def _is_filler(word: str) -> bool:
    """Silence, noise and the FSG's null transitions: not words of the caller."""
    return not word or word.startswith(("<", "[", "+", "("))


def _read_dictionary(path: str) -> dict[str, str]:
    """The cmudict entries as ``{"read": "R IY D", "read(2)": "R EH D", ...}``."""
    lexicon: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word, _, phones = line.strip().partition(" ")
            if word and phones:
                lexicon.setdefault(word, phones.strip())
    return lexicon


def _clean(word: str) -> str:
    """``read(2)`` -> ``read``: drop the alternate-pronunciation marker."""
    cut = word.find("(")
    return word[:cut] if cut > 0 else word


@dataclass(slots=True)
class _Native:
    """A pooled pocketsphinx decoder and the context searches added to it (oldest first)."""

    decoder: pocketsphinx.Decoder
    searches: OrderedDict[str, None] = field(default_factory=OrderedDict)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """What a context compiles to, shared by every decoder of the engine."""

    search: str  # search name inside a pocketsphinx decoder
    words: dict[str, str]  # every word (and "word(2)" variant) -> phones, to add_word
    jsgf: str | None  # grammar text, or None for an LM
    lm: object | None  # pocketsphinx.NGramModel


class PocketsphinxEngine:
    """The loaded en-us model; makes decoders, pools them, caches contexts."""

    name = "pocketsphinx"

    def __init__(
        self,
        model_dir: str | None = None,
        *,
        cmn_init: str = CMN_INIT,
        options: Mapping[str, object] | None = None,
        nbest: int = NBEST,
        background_words: int = BACKGROUND_WORDS,
        bigram_min_gain: float | None = BIGRAM_MIN_GAIN,
        bigram_min_prob: float = BIGRAM_MIN_PROB,
    ) -> None:
        """Point at a model directory (default: the one in the wheel).

        Args:
            model_dir: holds ``en-us/`` (acoustic model), ``en-us.lm.bin`` and
                ``cmudict-en-us.dict``, like ``pocketsphinx.get_model_path()``.
            cmn_init: initial cepstral mean.
            options: pocketsphinx settings that replace ``DECODER_OPTIONS``'
                (``{"beam": 1e-40}``); ``None`` values drop a setting.
            nbest: how many alternative texts a final hypothesis carries (0: none).
            background_words: how many of general English's commonest words (by the
                en-us LM's unigrams) a phrase LM admits, with the unigram share its
                context's ``general_english`` gives them.
            bigram_min_gain: general English's bigrams among a context's words join
                its LM where they beat the general LM's backoff by this factor
                (``None``: unigrams only).
            bigram_min_prob: ... and where their probability is at least this.
        """
        self.nbest = nbest
        root = model_dir or pocketsphinx.get_model_path()
        self._hmm = os.path.join(root, "en-us", "en-us")
        self._general_lm = os.path.join(root, "en-us", "en-us.lm.bin")
        self._dict_path = os.path.join(root, "en-us", "cmudict-en-us.dict")
        self._cmn_init = cmn_init
        self._cmn_prior = np.array([float(c) for c in cmn_init.split(",")])
        merged = {**DECODER_OPTIONS, **(options or {})}
        self._options = {k: v for k, v in merged.items() if v is not None}
        # Native decoders start from a one-word dictionary and get each context's
        # words by add_word: adding a 30-phrase LM to a decoder holding all of
        # cmudict (135k words) took 3-6 s, against 1 ms with a small dictionary.
        self._lexicon = _read_dictionary(self._dict_path)
        self._seed_dict = self._write_seed_dictionary()
        self._free: list[_Native] = []
        self._free_general: list[_Native] = []
        self._contexts: OrderedDict[RecognitionContext, _Compiled] = OrderedDict()
        self._serial = 0
        self._background_words = background_words
        self._background: dict[str, float] | None = None
        self._general: pocketsphinx.NGramModel | None = None
        self._bigram_min_gain = bigram_min_gain
        self._bigram_min_prob = bigram_min_prob
        self._prototype = self._new_native(general=False)  # fails fast on a bad model
        self._estimator: pocketsphinx.Decoder | None = None

    def _write_seed_dictionary(self) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False) as handle:
            handle.write(f"a {self._lexicon['a']}\n")
        return handle.name

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.unlink(self._seed_dict)

    def _new_native(self, *, general: bool, cmn: str = "live") -> pocketsphinx.Decoder:
        native = pocketsphinx.Decoder(
            hmm=self._hmm,
            dict=self._dict_path if general else self._seed_dict,
            lm=self._general_lm if general else None,
            cmn=cmn,
            cmninit=self._cmn_init,
            loglevel="FATAL",
            **self._options,
        )
        return native

    def lookup(self, word: str) -> str | None:
        """The word's first pronunciation in cmudict, or ``None``."""
        return self._lexicon.get(word)

    def variants(self, word: str) -> list[tuple[str, str]]:
        """``[(word, phones), (word(2), phones), ...]`` as cmudict lists them."""
        found = []
        for index in range(1, _MAX_VARIANTS + 1):
            name = word if index == 1 else f"{word}({index})"
            phones = self._lexicon.get(name)
            if phones is None:
                break
            found.append((name, phones))
        return found

    def decoder(self, *, partials: bool = True) -> PocketsphinxDecoder:
        """A decoder for one call (pooled native decoders when free).

        ``partials=False``: only finals, and each utterance decoded with its own
        cepstral mean (see the module docstring).
        """
        return PocketsphinxDecoder(self, hold_s=None if partials else CMN_HOLD_S)

    def cepstral_mean(self, audio: NDArray[np.int16]) -> str:
        """The cepstral mean of 16 kHz ``audio``, as pocketsphinx's batch CMN measures it.

        ``CMN_INIT`` (the engine's ``cmn_init``) when there is too little audio,
        blended with it below ``CMN_PRIOR_S``.
        The estimator is a native decoder only ever fed whole utterances, so it
        stays in batch mode (pocketsphinx turns batch CMN live for good once fed
        in blocks); its one-word grammar makes its search nearly free.
        """
        if len(audio) < CMN_MIN_S * DECODER_RATE_HZ:
            return self._cmn_init
        if self._estimator is None:
            estimator = self._new_native(general=False, cmn="batch")
            estimator.add_jsgf_string("cmn", "#JSGF V1.0;\ngrammar cmn;\npublic <a> = a;\n")
            estimator.activate_search("cmn")
            self._estimator = estimator
        self._estimator.start_utt()
        self._estimator.process_raw(audio.tobytes(), True, True)
        self._estimator.end_utt()
        measured = np.array([float(c) for c in str(self._estimator.get_cmn(False)).split(",")])
        weight = min(1.0, len(audio) / DECODER_RATE_HZ / CMN_PRIOR_S)
        return ",".join(f"{c:.3f}" for c in weight * measured + (1 - weight) * self._cmn_prior)

    def acquire(self, *, general: bool) -> _Native:
        """A native decoder from the pool (``general``: full cmudict + en-us LM)."""
        pool = self._free_general if general else self._free
        return pool.pop() if pool else _Native(self._new_native(general=general))

    def release(self, native: _Native, *, general: bool) -> None:
        """Take a closed call's native decoder back into the pool (live CMN from the start)."""
        native.decoder.set_cmn(self._cmn_init)
        (self._free_general if general else self._free).append(native)

    def compile(self, context: RecognitionContext) -> _Compiled | None:
        """The cached compiled form of ``context``; ``None`` means the default LM."""
        cached = self._contexts.get(context)
        if cached is not None:
            self._contexts.move_to_end(context)
            return cached
        compiled = self._compile(context)
        if compiled is not None:
            self._contexts[context] = compiled
            if len(self._contexts) > _CACHE_CONTEXTS:
                self._contexts.popitem(last=False)
        return compiled

    def _compile(self, context: RecognitionContext) -> _Compiled | None:
        background = self._common_words() if context.general_english > 0.0 else None
        if context.grammar is not None:
            vocabulary = grammar_words(context.grammar)
        else:
            vocabulary = {w for phrase in context.phrases for w in words_of(phrase)}
            if vocabulary and background:
                vocabulary |= background.keys()
        if not vocabulary:
            return None
        added, dropped = self._pronunciations(vocabulary)
        if dropped:
            log.warning(
                "context %r: no pronunciation for %s, dropped", context.name, sorted(dropped)
            )
        self._serial += 1
        search = f"ctx{self._serial}"
        if context.grammar is not None:
            kept = [p for p in context.grammar if words_of(p) and not set(words_of(p)) & dropped]
            if not kept:
                return None
            return _Compiled(search, added, build_jsgf(kept), None)
        bigrams = None
        if background and self._bigram_min_gain is not None:
            bigrams = self._general_bigrams(vocabulary - dropped)
        arpa = build_arpa(
            context.phrases,
            background=background,
            background_weight=context.general_english,
            background_bigrams=bigrams,
        )
        with tempfile.NamedTemporaryFile("w", suffix=".arpa", delete=False) as handle:
            handle.write(arpa)
        try:
            native = self._prototype
            lm = pocketsphinx.NGramModel(native.config, native.logmath, handle.name)
        finally:
            os.unlink(handle.name)
        return _Compiled(search, added, None, lm)

    def _common_words(self) -> dict[str, float]:
        """General English's commonest words -> unigram probability (computed once)."""
        if self._background is None:
            self._background = {}
            if self._background_words > 0:
                general = self._general_model()
                # prob() answers in the log-math base of pocketsphinx (1.0001).
                scored = heapq.nlargest(
                    self._background_words,
                    ((general.prob([w]), w) for w in self._lexicon if "(" not in w),
                )
                self._background = {
                    w: 1.0001**score for score, w in scored if _WORD_ONLY.fullmatch(w)
                }
        return self._background

    def _general_model(self) -> pocketsphinx.NGramModel:
        if self._general is None:
            self._general = pocketsphinx.NGramModel.readfile(self._general_lm)
        return self._general

    def _general_bigrams(self, vocabulary: set[str]) -> dict[str, dict[str, float]]:
        """General English's telling bigrams within ``vocabulary`` (see ``build_arpa``).

        The binary LM cannot list its bigrams, so every pair is asked for (about
        6 M ``prob`` calls, ~5 s, once per context). A pair is listed when it beats
        the history's backoff by ``bigram_min_gain``; each history's row is
        normalised over the vocabulary and ``</s>``.
        """
        general = self._general_model()
        followers = sorted(vocabulary | {SENTENCE_END})
        unigram = [general.prob([w]) for w in followers]
        known = [i for i, score in enumerate(unigram) if score > _UNKNOWN_SCORE]
        followers = [followers[i] for i in known]
        unigram = [unigram[i] for i in known]
        min_gain = round(math.log(self._bigram_min_gain or 1.0) / math.log(_LOG_BASE))
        table: dict[str, dict[str, float]] = {}
        for history in [SENTENCE_START, *sorted(vocabulary)]:
            if general.prob([history]) <= _UNKNOWN_SCORE and history != SENTENCE_START:
                continue  # unknown history: its row is the unigrams
            scores = [general.prob([w, history]) for w in followers]
            gains = [s - u for s, u in zip(scores, unigram, strict=True)]
            backoff = Counter(gains).most_common(1)[0][0]  # unlisted pairs share it (+-1)
            listed = [i for i, g in enumerate(gains) if g - backoff > max(min_gain, 2)]
            if not listed:
                continue
            top = max(scores)
            total = sum(_LOG_BASE ** (s - top) for s in scores)
            row = {followers[i]: _LOG_BASE ** (scores[i] - top) / total for i in listed}
            row = {w: p for w, p in row.items() if p >= self._bigram_min_prob}
            if row:
                table[history] = row
        return table

    def _pronunciations(self, vocabulary: set[str]) -> tuple[dict[str, str], set[str]]:
        """Every pronunciation the context's words need, and the words with none."""
        entries: dict[str, str] = {}
        dropped: set[str] = set()
        for word in sorted(vocabulary):
            known = self.variants(word)
            if known:
                entries.update(known)
                continue
            phones = pronounce(word, self.lookup)
            if phones is None:
                dropped.add(word)
            else:
                log.info("pronouncing out-of-dictionary %r as %s", word, phones)
                entries[word] = phones
        return entries, dropped


class PocketsphinxDecoder:
    """One call's pocketsphinx decoder; see the module docstring."""

    def __init__(self, engine: PocketsphinxEngine, *, hold_s: float | None = None) -> None:
        """``hold_s``: audio held back to set each utterance's cepstral mean (None: none)."""
        self._engine = engine
        self._small: _Native | None = None  # context searches
        self._general: _Native | None = None  # free decoding, lazily
        self._native: pocketsphinx.Decoder | None = None  # the utterance's
        self._resampler = Resampler(RATE_HZ, DECODER_RATE_HZ)
        self._delay_s = self._resampler.delay_samples / DECODER_RATE_HZ
        self._hold_samples = None if hold_s is None else round(hold_s * RATE_HZ)
        self._held: list[NDArray[np.int16]] | None = None  # 16 kHz, until the utterance starts
        self._recent: deque[NDArray[np.int16]] = deque()  # the call's latest utterance audio
        self._recent_samples = 0
        self._noise = np.random.default_rng(0)
        self._closed = False
        self._fed_samples = 0
        self._last_partial = ""

    def _live(self) -> pocketsphinx.Decoder:
        if self._native is None:
            raise RuntimeError("no utterance: call start first")
        return self._native

    def start(self, context: RecognitionContext) -> None:
        """Begin an utterance (ending any unfinished one without a result)."""
        if self._closed:
            raise RuntimeError("decoder is closed")
        self._abandon()
        compiled = self._engine.compile(context)
        if compiled is None:
            if self._general is None:
                self._general = self._engine.acquire(general=True)
            native = self._general.decoder
        else:
            if self._small is None:
                self._small = self._engine.acquire(general=False)
            native = self._small.decoder
            self._use(self._small, compiled)
        self._resampler.reset()
        self._fed_samples = 0
        self._last_partial = ""
        self._native = native
        if self._hold_samples is None:
            native.start_utt()
        else:
            self._held = []
            self._noise = np.random.default_rng(0)  # the same utterance decodes the same

    def _abandon(self) -> None:
        """End the utterance in progress, if any, without a result."""
        if self._native is not None and self._held is None:
            self._native.end_utt()
        self._native = None
        self._held = None

    def _decode(
        self, native: pocketsphinx.Decoder, audio: NDArray[np.int16], *, ending: bool
    ) -> None:
        """Decode 16 kHz ``audio`` now, or hold it until the hold is full or the utterance ends."""
        if self._hold_samples is None:
            native.process_raw(audio.tobytes(), False, False)
            return
        self._remember(audio)
        if self._held is None:
            native.process_raw(audio.tobytes(), False, False)
            return
        self._held.append(audio)
        if ending or self._fed_samples >= self._hold_samples:
            self._release_held(native)  # ending first: a short utterance's whole mean

    def _release_held(self, native: pocketsphinx.Decoder) -> None:
        """Start the held utterance with the call's recent cepstral mean, and decode it."""
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.int16)
        self._held = None
        recent = np.concatenate(self._recent) if self._recent else held
        native.set_cmn(self._engine.cepstral_mean(recent[-_WINDOW_SAMPLES:]))
        native.start_utt()
        native.process_raw(held.tobytes(), False, False)

    def _with_line_noise(self, samples: NDArray[np.int16]) -> NDArray[np.int16]:
        """``samples`` with its digital silence (10 ms at most +-1) filled with line noise."""
        blocks = -(-len(samples) // _SILENCE_BLOCK)
        padded = np.zeros(blocks * _SILENCE_BLOCK, np.int16)
        padded[: len(samples)] = samples
        rows = padded.reshape(blocks, _SILENCE_BLOCK)
        silent = np.abs(rows).max(axis=1) <= 1
        if silent.any():
            noise = self._noise.normal(0.0, LINE_NOISE_RMS, (int(silent.sum()), _SILENCE_BLOCK))
            rows[silent] = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
        return padded[: len(samples)]

    def _remember(self, audio: NDArray[np.int16]) -> None:
        """Keep (at least) the call's latest ``CMN_WINDOW_S`` of utterance audio."""
        self._recent.append(audio)
        self._recent_samples += len(audio)
        while self._recent_samples - len(self._recent[0]) >= _WINDOW_SAMPLES:
            self._recent_samples -= len(self._recent.popleft())

    @staticmethod
    def _use(pooled: _Native, compiled: _Compiled) -> None:
        native, searches, search = pooled.decoder, pooled.searches, compiled.search
        if search in searches:
            searches.move_to_end(search)
        else:
            missing = [(w, p) for w, p in compiled.words.items() if native.lookup_word(w) is None]
            for index, (word, phones) in enumerate(missing):
                # Rebuilding the decoder's tables once, after the last word, is enough.
                native.add_word(word, phones, index == len(missing) - 1)
            if compiled.jsgf is not None:
                native.add_jsgf_string(search, compiled.jsgf)
            else:
                native.add_lm(search, compiled.lm)
            searches[search] = None
            if len(searches) > _CACHE_CONTEXTS:
                old, _ = searches.popitem(last=False)
                native.remove_search(old)
        native.activate_search(search)

    def accept(self, pcm: bytes) -> Hypothesis | None:
        """Feed 8 kHz s16le audio; a partial when the best text changed (if partials)."""
        native = self._live()
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        self._fed_samples += len(samples)
        if self._hold_samples is not None:
            samples = self._with_line_noise(samples)
        self._decode(native, self._resampler.process(samples), ending=False)
        if self._hold_samples is not None:
            return None  # finals only
        hyp = native.hyp()
        text = "" if hyp is None else " ".join(self._words_of_text(hyp.hypstr))
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return self._hypothesis(native, final=False)

    def finish(self) -> Hypothesis:
        """End the utterance and return its final hypothesis."""
        native = self._live()
        self._native = None  # the utterance is over, whatever happens below
        flush = np.zeros(-(-self._resampler.delay_samples // 2), dtype=np.int16)
        self._decode(native, self._resampler.process(flush), ending=True)
        native.end_utt()
        final = self._hypothesis(native, final=True)
        if self._engine.nbest > 0 and final.text:
            final = replace(final, alternatives=self._alternatives(native, final.text))
        return final

    def _alternatives(self, native: pocketsphinx.Decoder, best: str) -> tuple[str, ...]:
        """Up to ``engine.nbest`` distinct texts of the lattice's n-best after ``best``."""
        seen = {best}
        found: list[str] = []
        for index, hyp in enumerate(native.nbest()):
            # The iterator can yield None where the lattice has no further path.
            if hyp is None or index >= _NBEST_SCAN or len(found) >= self._engine.nbest:
                break
            text = " ".join(self._words_of_text(hyp.hypstr))
            if text and text not in seen:
                seen.add(text)
                found.append(text)
        return tuple(found)

    def close(self) -> None:
        """Return the native decoders to the engine's pool."""
        if self._closed:
            return
        self._closed = True
        self._abandon()
        if self._small is not None:
            self._engine.release(self._small, general=False)
        if self._general is not None:
            self._engine.release(self._general, general=True)
        self._small = self._general = None

    @staticmethod
    def _words_of_text(text: str) -> list[str]:
        return [_clean(w) for w in text.split() if not _is_filler(w)]

    def _hypothesis(self, native: pocketsphinx.Decoder, *, final: bool) -> Hypothesis:
        duration_s = self._fed_samples / RATE_HZ
        words: list[Word] = []
        for seg in native.seg() or ():  # None when nothing was heard (a grammar on silence)
            if _is_filler(seg.word):
                continue
            start_s = min(max(seg.start_frame / FRAMES_PER_S - self._delay_s, 0.0), duration_s)
            end_s = (seg.end_frame + 1) / FRAMES_PER_S - self._delay_s
            end_s = min(max(end_s, start_s), duration_s)
            confidence = min(max(float(seg.prob), 0.0), 1.0)
            words.append(Word(_clean(seg.word), start_s, end_s, confidence))
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        text = " ".join(w.text for w in words)
        return Hypothesis(text, tuple(words), confidence, final)
