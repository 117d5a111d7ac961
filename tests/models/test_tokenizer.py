from __future__ import annotations

from dca.models.tokenizer import ROLE_TOKENS, train_tokenizer

CORPUS = [
    "Question: Jo has 5829 apples and gives away 5735.\nSteps:\nx1 = 5829 - 5735\nanswer = x1 / 5735\n",
    "Question: Sam earns $12 an hour for 50 minutes.\nSteps:\nx1 = 12 / 60\nanswer = x1 * 50\n",
    "Net revenue: 2015 = 5,829; 2014 = 5,735 (in millions)",
] * 20


def test_digits_are_single_tokens_and_text_round_trips():
    tok = train_tokenizer(CORPUS, vocab_size=300)
    text = "x1 = 58290.75 - 1234\nanswer = x1 / 99\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    digit_pieces = [p for p in pieces if any(ch.isdigit() for ch in p)]
    # every token holding a digit is exactly one digit (the "x1" name included: "1" stands alone)
    assert all(len(p) == 1 for p in digit_pieces), digit_pieces
    assert "".join(ch for ch in text if ch.isdigit()) == "".join(digit_pieces)
    assert tok.decode(ids) == text


def test_special_tokens_bos_and_unicode():
    tok = train_tokenizer(CORPUS, vocab_size=300)
    ids = tok("x1 = 3")["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert {tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token} == {"<pad>", "<s>", "</s>", "<unk>"}
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}) == 4
    # byte-level: characters never seen in training still round-trip
    assert tok.decode(tok("€ 1.5 — naïve ✓", add_special_tokens=False)["input_ids"]) == "€ 1.5 — naïve ✓"


def test_save_load_and_chat_template(tmp_path):
    from transformers import AutoTokenizer

    tok = train_tokenizer(CORPUS, vocab_size=300)
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert again("x1 = 5829 - 5735")["input_ids"] == tok("x1 = 5829 - 5735")["input_ids"]
    text = again.apply_chat_template([{"role": "user", "content": "Value: 42"}], tokenize=False,
                                     add_generation_prompt=True)
    assert text == "<|user|>\nValue: 42\n<|assistant|>\n"
    ids = again(text, add_special_tokens=False)["input_ids"]
    for role in ("<|user|>", "<|assistant|>"):
        assert again.convert_tokens_to_ids(role) in ids  # role markers are single special tokens
    assert set(ROLE_TOKENS) <= set(again.all_special_tokens)
