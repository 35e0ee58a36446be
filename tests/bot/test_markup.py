from bot.slack.markup import strip_emoji, to_plain

NAMES = {"U1": "Maren (Quillmate)"}


def test_mentions_links_and_styles_become_plain_text():
    text = "<@U1> see *the* <https://help.example/x_y|_pricing_ page> &amp; <#C9|billing>, not ~old~ `code`"
    assert to_plain(text, NAMES) == "Maren (Quillmate) see the pricing page & #billing, not old code"


def test_bare_links_and_words_with_underscores_survive():
    assert to_plain("<https://ex.example/snake_case_path> and snake_case_name") == \
        "https://ex.example/snake_case_path and snake_case_name"
    assert to_plain("<mailto:a@b.example|a@b.example> <!here> <@U7|bob>") == "a@b.example @here bob"


def test_emoji_only_detection_keeps_text_and_rtl():
    assert strip_emoji(":+1: 👍🏽 :white_check_mark:") == ""
    assert strip_emoji("نعم، يمكنك ذلك 🙂") == "نعم، يمكنك ذلك"
