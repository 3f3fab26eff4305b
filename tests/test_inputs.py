"""Every input rule of the text-to-image contract, with good and bad values."""

import json

import pytest

from handler import inputs
from handler.errors import InputError


def parse(**fields):
    return inputs.parse({"prompt": "a lighthouse at dusk", **fields})


def test_defaults_match_the_contract():
    request = parse()
    assert request.parameters["width"] == 832 and request.parameters["height"] == 1536
    assert request.parameters["guidance_scale"] == 3.5
    assert request.parameters["num_inference_steps"] == 28
    assert request.parameters["num_images"] == 1
    assert request.output_format == "png"
    assert 0 <= request.seed < 2**53 and request.parameters["seed"] == request.seed


def test_random_seeds_differ_between_requests():
    assert len({parse().seed for _ in range(5)}) > 1


@pytest.mark.parametrize(
    "field,value",
    [
        ("width", 256), ("width", 2048), ("height", 1024), ("guidance_scale", 0), ("guidance_scale", 30),
        ("guidance_scale", 7), ("num_inference_steps", 1), ("num_inference_steps", 100), ("seed", 0),
        ("seed", 2**64 - 1), ("num_images", 4), ("width", 1024.0),
    ],
)
def test_accepts_values_inside_the_rules(field, value):
    request = parse(**{field: value})
    assert request.parameters[field] == value


@pytest.mark.parametrize(
    "field,value,rule_fragment",
    [
        ("width", 250, "multiple of 16"),
        ("width", 240, "from 256 to 2048"),
        ("height", 2064, "from 256 to 2048"),
        ("width", "832", "integer"),
        ("width", True, "integer"),
        ("width", 832.5, "integer"),
        ("guidance_scale", -0.1, "from 0 to 30"),
        ("guidance_scale", 30.5, "from 0 to 30"),
        ("guidance_scale", "3.5", "number"),
        ("guidance_scale", float("nan"), "number"),
        ("num_inference_steps", 0, "from 1 to 100"),
        ("num_inference_steps", 101, "from 1 to 100"),
        ("seed", -1, "from 0 to"),
        ("seed", 2**64, "from 0 to"),
        ("seed", "42", "integer"),
        ("num_images", 5, "from 1 to 4"),
        ("num_images", 0, "from 1 to 4"),
        ("output_format", "gif", "png, jpeg, webp"),
        ("quality", 0, "from 1 to 100"),
        ("include_previews", "yes", "true or false"),
        ("images", "x.png", "list"),
    ],
)
def test_refuses_values_outside_the_rules_naming_field_value_and_rule(field, value, rule_fragment):
    with pytest.raises(InputError) as caught:
        parse(**{field: value})
    err = caught.value
    assert err.field == field
    assert f"'{field}'" in err.message and rule_fragment in err.message
    response = err.to_response()
    assert response["details"]["field"] == field and response["details"]["type"] == "invalid_input"


@pytest.mark.parametrize("prompt,fragment", [(None, "required"), ("", "empty"), ("   ", "empty"), (42, "string"), ("x" * 10_001, "10,000")])
def test_prompt_rules(prompt, fragment):
    with pytest.raises(InputError) as caught:
        inputs.parse({"prompt": prompt} if prompt is not None else {})
    assert caught.value.field == "prompt" and fragment in caught.value.message


def test_long_prompt_is_not_echoed_in_full():
    with pytest.raises(InputError) as caught:
        inputs.parse({"prompt": "y" * 20_000})
    assert len(caught.value.message) < 300


@pytest.mark.parametrize("raw", [None, [], "a fox", 3])
def test_missing_or_non_object_input_is_one_clear_error(raw):
    with pytest.raises(InputError) as caught:
        inputs.parse(raw)
    assert caught.value.field == "input"


def test_unknown_field_is_refused_with_the_accepted_list():
    with pytest.raises(InputError) as caught:
        parse(num_steps=20)
    assert caught.value.field == "num_steps" and "num_inference_steps" in caught.value.message


def test_output_format_is_case_insensitive_and_jpg_means_jpeg():
    assert parse(output_format="JPG").output_format == "jpeg"
    assert parse(output_format="WebP", quality=70).quality == 70


def test_custom_workflow_needs_no_prompt_and_sets_only_given_fields():
    request = inputs.parse({"workflow": {"1": {"class_type": "X", "inputs": {}}}, "seed": 5})
    assert request.parameters == {"seed": 5} and request.prompt is None


@pytest.mark.parametrize("workflow", ["{}", {}, [1]])
def test_workflow_must_be_a_graph_object(workflow):
    with pytest.raises(InputError) as caught:
        inputs.parse({"workflow": workflow})
    assert caught.value.field == "workflow"


def test_workflow_and_workflow_name_are_exclusive_and_names_are_checked():
    with pytest.raises(InputError):
        inputs.parse({"workflow": {"1": {}}, "workflow_name": "flux1-dev-t2i"})
    with pytest.raises(InputError) as caught:
        inputs.parse({"prompt": "x", "workflow_name": "../etc/passwd"})
    assert caught.value.field == "workflow_name"


def test_info_action_takes_no_other_field():
    assert inputs.parse({"action": "info"}).action == "info"
    with pytest.raises(InputError):
        inputs.parse({"action": "info", "prompt": "x"})
    with pytest.raises(InputError):
        inputs.parse({"action": "delete"})


# ---- what JSON clients really send ------------------------------------------------------------------------

def test_null_is_a_field_left_out_for_every_optional_field():
    """Clients that serialise None (Python's json, many SDKs) get the defaults, not a refusal."""
    fields = ("width", "height", "guidance_scale", "num_inference_steps", "num_images", "output_format", "quality",
              "legacy_image", "include_previews", "seed", "loras", "images", "workflow_name")
    request = inputs.parse({"prompt": "a fox", **{name: None for name in fields}})
    plain = inputs.parse({"prompt": "a fox", "seed": 7})
    assert {k: v for k, v in request.parameters.items() if k != "seed"} == \
        {k: v for k, v in plain.parameters.items() if k != "seed"}
    assert (request.output_format, request.quality, request.legacy_image, request.loras) == ("png", 90, True, ())
    assert request.provided == frozenset({"prompt"})


def test_null_in_a_custom_workflow_request_binds_nothing():
    request = inputs.parse({"workflow": {"1": {"class_type": "X", "inputs": {}}}, "width": None, "prompt": None})
    assert "width" not in request.parameters and "prompt" not in request.parameters


@pytest.mark.parametrize("raw,field", [
    ({"prompt": "a fox \ud83e"}, "prompt"),
    ({"prompt": "a", "output_format": "png\udc00"}, "output_format"),
    ({"prompt": "a", "bad\ud800": 1}, "bad\\ud800"),
    ({"workflow": {"4": {"class_type": "CLIPTextEncode", "inputs": {"text": "fox \ud83e"}}}}, "workflow.4.inputs.text"),
    ({"prompt": "a", "images": [{"name": "x\ud83e.png", "image": "AAAA"}]}, "images[0].name"),
])
def test_a_lone_surrogate_anywhere_is_refused_naming_where_and_the_error_is_sendable(raw, field):
    """A JS client that cuts a string inside an emoji sends a lone surrogate: it can be neither sent on to ComfyUI
    nor echoed back as UTF-8, so it is one clear refusal, and the refusal itself encodes as UTF-8 JSON."""
    with pytest.raises(InputError) as err:
        inputs.parse(raw)
    assert err.value.details["field"] == field and "surrogate" in err.value.rule
    response = err.value.to_response()
    json.dumps(response, ensure_ascii=False).encode("utf-8")  # what the runpod SDK sends
    assert "\\ud8" in response["error"] or "\\udc" in response["error"]


@pytest.mark.parametrize("field,value", [("guidance_scale", 10**400), ("strength", -(10**400)),
                                         ("width", 10**400), ("seed", 10**400)],
                         ids=["guidance_scale", "strength", "width", "seed"])
def test_huge_integers_are_out_of_range_not_an_internal_error(field, value):
    raw = {"prompt": "a", field: value}
    if field == "strength":
        raw.update(workflow_name="flux1-dev-img2img")
    with pytest.raises(InputError) as err:
        inputs.parse(raw)
    assert err.value.details["field"] == field
    assert len(err.value.message) < 400  # the value is shortened, not 400 digits


def test_a_float_seed_beyond_2_53_is_refused_rather_than_silently_changed():
    with pytest.raises(InputError) as err:
        inputs.parse({"prompt": "a", "seed": json.loads("12345678901234567890.0")})
    assert err.value.details["field"] == "seed" and "JSON integer" in err.value.rule
    assert inputs.parse({"prompt": "a", "seed": 9007199254740992.0}).seed == 2**53  # exact: accepted
    assert inputs.parse({"prompt": "a", "seed": 12345678901234567890}).seed == 12345678901234567890


def test_values_are_shown_as_json_spells_them():
    with pytest.raises(InputError) as err:
        inputs.parse({"prompt": "a", "guidance_scale": float("nan")})
    assert "= NaN is invalid" in err.value.message
    assert err.value.details["value"] == "NaN"  # JSON has no NaN: strict parsers would reject the whole response
    json.dumps(err.value.to_response(), allow_nan=False)
    with pytest.raises(InputError) as err:
        inputs.parse({"prompt": "a", "legacy_image": "yes", "quality": True})
    assert "= true is invalid" in err.value.message
