"""A character-level ``PreTrainedTokenizerFast`` for the built-in model.

Every character of ``CHARS`` is one token; ``<pad>``, ``<bos>``, ``<eos>`` and ``<unk>`` are special tokens.
Built from the ``tokenizers`` library's WordLevel model with a split-every-character pre-tokenizer, so it
saves and loads with ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` like any hub tokenizer.

Two traps (transformers 5.x / TRL 1.x): ``padding_side`` set as an attribute after construction is not saved,
so it is passed to the constructor; TRL appends EOS as the *text* ``"<eos>"``, so that string must map to the
special token (it does: it is registered as a special token, which the tokenizer matches before splitting).
"""

from __future__ import annotations

import string

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
CHARS = string.digits + string.ascii_lowercase + " +-*=/()?:;,.|>#\n!"
"""The vocabulary: digits, lowercase letters, the arithmetic signs and a little punctuation (new characters go
at the end, so that the ids of the existing ones never change)."""


def make_tokenizer(chars: str = CHARS, padding_side: str = "left"):
    """A new character-level tokenizer over ``chars`` (lazy imports: tokenizers, transformers)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        padding_side=padding_side, clean_up_tokenization_spaces=False,
    )
    return tok
