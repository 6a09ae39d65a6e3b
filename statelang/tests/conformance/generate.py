#!/usr/bin/env python3
"""Generates the conformance case files from compact tables.

Each expectation comes from AWS's documentation (the examples in "Input and output
processing", "Intrinsic functions", "Choice workflow state", "Error handling", "Map
state"), or from the documented rule the case exercises. Regenerate with
`python3 generate.py` in this folder; the JSON files are committed and are what the
suite reads.
"""
import base64
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = {}


def add(file, name, definition, input=None, expect=None, tasks=None, random=None):
    case = {"name": name, "definition": definition}
    if input is not None:
        case["input"] = input
    if tasks is not None:
        case["tasks"] = tasks
    if random is not None:
        case["random"] = random
    case["expect"] = expect
    FILES.setdefault(file, []).append(case)


def one(state, name="S"):
    """A machine with one state; transition states get End: true."""
    state = dict(state)
    if state["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in state:
        state.setdefault("End", True)
    return {"StartAt": name, "States": {name: state}}


def ok(output):
    return {"output": output}


def err(error, cause_contains=None, cause=None):
    e = {"error": error}
    if cause_contains is not None:
        e["cause_contains"] = cause_contains
    if cause is not None:
        e["cause"] = cause
    return e


def invalid(code):
    return {"invalid": True, "code": code}


# ---------------------------------------------------------------------------
# Input and output processing
# ---------------------------------------------------------------------------
F = "dataflow.json"
DOC_INPUT = {
    "comment": "This is a test of the input and output of a Task state.",
    "details": "Default example",
    "who": "AWS Step Functions",
}
HELLO = "Hello, AWS Step Functions!"
T = {"hello": [{"result": HELLO}]}
add(F, "ResultPath $.taskresult adds the result to the input (AWS example)",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.taskresult"}), DOC_INPUT,
    ok(dict(DOC_INPUT, taskresult=HELLO)), tasks=T)
add(F, "ResultPath absent: the result replaces the input",
    one({"Type": "Task", "Resource": "hello"}), DOC_INPUT, ok(HELLO), tasks=T)
add(F, "ResultPath $ : the result replaces the input",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$"}), DOC_INPUT, ok(HELLO), tasks=T)
add(F, "ResultPath null discards the result and keeps the input",
    one({"Type": "Task", "Resource": "hello", "ResultPath": None}), DOC_INPUT, ok(DOC_INPUT), tasks=T)
add(F, "ResultPath into an existing nested object keeps its siblings",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.strings.lambdaresult"}),
    {"strings": {"a": "x"}, "n": 1}, ok({"strings": {"a": "x", "lambdaresult": HELLO}, "n": 1}), tasks=T)
add(F, "ResultPath creates missing intermediate objects",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.a.b.c"}),
    {"n": 1}, ok({"n": 1, "a": {"b": {"c": HELLO}}}), tasks=T)
add(F, "ResultPath overwrites an existing field",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.who"}),
    DOC_INPUT, ok(dict(DOC_INPUT, who=HELLO)), tasks=T)
add(F, "ResultPath through a string field is a ResultPathMatchFailure",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.who.name"}),
    DOC_INPUT, err("States.ResultPathMatchFailure", "$.who.name"), tasks=T)
add(F, "ResultPath on a non-object input is a ResultPathMatchFailure",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.x"}),
    "just a string", err("States.ResultPathMatchFailure"), tasks=T)
add(F, "ResultPath on an array input is a ResultPathMatchFailure",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.x"}),
    [1, 2], err("States.ResultPathMatchFailure"), tasks=T)
add(F, "ResultPath with an array index replaces that element",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.list[1]"}),
    {"list": [1, 2, 3]}, ok({"list": [1, HELLO, 3]}), tasks=T)
add(F, "ResultPath with an index past the end fails",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.list[5]"}),
    {"list": [1]}, err("States.ResultPathMatchFailure"), tasks=T)
add(F, "A Pass whose ResultPath fails quotes its input as it arrived",
    one({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b[0]"}),
    {"k": 1}, err("States.ResultPathMatchFailure",
                  "to input '{\"k\":1}': cannot index [0] into a non-array value"))
add(F, "A Pass places its Result in a copy when OutputPath selects from it",
    one({"Type": "Pass", "Result": {"v": 2}, "ResultPath": "$.r", "OutputPath": "$.r"}),
    {"k": 1}, ok({"v": 2}))
add(F, "A Pass with a missing OutputPath fails after placing its Result",
    one({"Type": "Pass", "Result": 2, "ResultPath": "$.r", "OutputPath": "$.nope"}),
    {"k": 1}, err("States.Runtime", "$.nope"))
add(F, "A Pass with ResultPath null passes its input on through OutputPath",
    one({"Type": "Pass", "Result": 2, "ResultPath": None, "OutputPath": "$.k"}),
    {"k": [1]}, ok([1]))
add(F, "ResultPath in bracket notation",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$['my key']"}),
    {}, ok({"my key": HELLO}), tasks=T)
add(F, "ResultPath keeps an object result as an object",
    one({"Type": "Task", "Resource": "obj", "ResultPath": "$.r"}),
    {"a": 1}, ok({"a": 1, "r": {"x": [1, 2]}}), tasks={"obj": [{"result": {"x": [1, 2]}}]})
add(F, "ResultPath places a null result",
    one({"Type": "Task", "Resource": "nul", "ResultPath": "$.r"}),
    {"a": 1}, ok({"a": 1, "r": None}), tasks={"nul": [{"result": None}]})

add(F, "InputPath selects part of the input for the task",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.lib"}),
    {"lib": {"title": "x"}, "other": 1}, ok({"title": "x"}))
add(F, "InputPath null gives the task an empty object",
    one({"Type": "Task", "Resource": "echo", "InputPath": None}), {"a": 1}, ok({}))
add(F, "InputPath $ passes everything",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$"}), {"a": 1}, ok({"a": 1}))
add(F, "InputPath to a missing field is States.Runtime",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.missing"}), {"a": 1},
    err("States.Runtime", "$.missing"))
add(F, "InputPath selecting a scalar",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a"}), {"a": 7}, ok(7))
add(F, "InputPath selecting an array element",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a[1]"}), {"a": [5, 6]}, ok(6))
add(F, "InputPath with a negative index takes from the end",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a[-1]"}), {"a": [5, 6, 7]}, ok(7))
add(F, "InputPath does not change what ResultPath merges into (the raw input)",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a", "ResultPath": "$.r"}),
    {"a": {"x": 1}, "b": 2}, ok({"a": {"x": 1}, "b": 2, "r": {"x": 1}}))
add(F, "InputPath with a wildcard selects an array of matches",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.items[*].id"}),
    {"items": [{"id": 1}, {"id": 2}]}, ok([1, 2]))
add(F, "InputPath with a filter expression",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.items[?(@.price < 10)].name"}),
    {"items": [{"name": "a", "price": 5}, {"name": "b", "price": 50}, {"name": "c", "price": 9}]}, ok(["a", "c"]))
add(F, "InputPath with a slice",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a[0:2]"}), {"a": [1, 2, 3]}, ok([1, 2]))
add(F, "InputPath with deep scan",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$..id"}),
    {"x": {"id": 1}, "y": [{"id": 2}]}, ok([1, 2]))
add(F, "InputPath wildcard with no match selects an empty array",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.items[*].nope"}),
    {"items": [{"id": 1}]}, ok([]))

add(F, "OutputPath selects part of the output",
    one({"Type": "Task", "Resource": "echo", "OutputPath": "$.b"}), {"a": 1, "b": {"c": 2}}, ok({"c": 2}))
add(F, "OutputPath null gives an empty object",
    one({"Type": "Task", "Resource": "echo", "OutputPath": None}), {"a": 1}, ok({}))
add(F, "OutputPath to a missing field is States.Runtime",
    one({"Type": "Task", "Resource": "echo", "OutputPath": "$.nope"}), {"a": 1}, err("States.Runtime", "$.nope"))
add(F, "OutputPath applies after ResultPath",
    one({"Type": "Task", "Resource": "hello", "ResultPath": "$.r", "OutputPath": "$.r"}),
    {"a": 1}, ok(HELLO), tasks=T)
add(F, "InputPath, ResultPath and OutputPath together (AWS example shape)",
    one({"Type": "Task", "Resource": "sum", "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult",
         "OutputPath": "$.data"}),
    {"comment": "c", "data": {"val1": 23, "val2": 17}, "extra": "foo", "lambda": {"who": "AWS"}},
    ok({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS!"}),
    tasks={"sum": [{"result": "Hello, AWS!"}]})

add(F, "Parameters with a static value",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"a": 1, "b": [1, 2], "c": {"d": None}}}),
    {"x": 1}, ok({"a": 1, "b": [1, 2], "c": {"d": None}}))
add(F, "Parameters with a path value (.$)",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"comment": "Selecting what I care about.",
        "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability",
                      "StaticValue": "foo"}}}),
    {"comment": "Example for Parameters.", "product": {"details": {"color": "blue", "size": "small",
     "material": "cotton"}, "availability": "in stock", "sku": "2317", "cost": "$23"}},
    ok({"comment": "Selecting what I care about.", "MyDetails": {"size": "small", "exists": "in stock",
        "StaticValue": "foo"}}))
add(F, "Parameters reading the context object",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"execId.$": "$$.Execution.Id",
        "name.$": "$$.State.Name", "retry.$": "$$.State.RetryCount", "sm.$": "$$.StateMachine.Name"}}),
    {}, ok({"execId": "arn:aws:states:us-east-1:123456789012:execution:Machine:exec-1", "name": "S",
            "retry": 0, "sm": "Machine"}))
add(F, "Parameters reading the execution input from the context",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"orig.$": "$$.Execution.Input.k"}}),
    {"k": "v"}, ok({"orig": "v"}))
add(F, "Parameters $ copies the whole effective input",
    one({"Type": "Task", "Resource": "echo", "InputPath": "$.a", "Parameters": {"all.$": "$"}}),
    {"a": {"b": 1}}, ok({"all": {"b": 1}}))
add(F, "Parameters .$ with a missing path is States.Runtime",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"x.$": "$.missing"}}),
    {"a": 1}, err("States.Runtime", "x.$"))
add(F, "Parameters .$ with an indefinite path yields an array",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"ids.$": "$.l[*].id"}}),
    {"l": [{"id": "a"}, {"id": "b"}]}, ok({"ids": ["a", "b"]}))
add(F, "Parameters .$ fields inside arrays of objects are evaluated",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"Entries": [{"Detail.$": "$.d", "Source": "s"}]}}),
    {"d": {"k": 1}}, ok({"Entries": [{"Detail": {"k": 1}, "Source": "s"}]}))
add(F, "Parameters nested objects with .$ at several depths",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"a": {"b": {"c.$": "$.v", "d": 1}}, "e.$": "$.w"}}),
    {"v": True, "w": None}, ok({"a": {"b": {"c": True, "d": 1}}, "e": None}))
add(F, "Parameters selecting null keeps null",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"n.$": "$.n"}}), {"n": None}, ok({"n": None}))
add(F, "Parameters with an intrinsic function",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"greeting.$": "States.Format('Hi {}', $.name)"}}),
    {"name": "Ann"}, ok({"greeting": "Hi Ann"}))
add(F, "Parameters key order follows the template",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"z": 1, "a.$": "$.a", "m": 2}}),
    {"a": 0}, ok({"z": 1, "a": 0, "m": 2}))
add(F, "Parameters with a field name containing special characters via bracket path",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"v.$": "$['a b'].c"}}),
    {"a b": {"c": 3}}, ok({"v": 3}))
add(F, "Parameters with a field name containing a dash",
    one({"Type": "Task", "Resource": "echo", "Parameters": {"v.$": "$.my-field"}}),
    {"my-field": 3}, ok({"v": 3}))

add(F, "ResultSelector picks fields from the task result",
    one({"Type": "Task", "Resource": "emr", "ResultSelector": {"ClusterId.$": "$.output.ClusterId",
         "ResourceType.$": "$.resourceType"}, "ResultPath": "$.EMROutput"}),
    {"in": 1},
    ok({"in": 1, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}}),
    tasks={"emr": [{"result": {"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
                                "output": {"SdkHttpMetadata": {"HttpStatusCode": 200},
                                           "ClusterId": "AKIAIOSFODNN7EXAMPLE"}}}]})
add(F, "ResultSelector with a missing path is States.Runtime",
    one({"Type": "Task", "Resource": "r", "ResultSelector": {"x.$": "$.nope"}}), {},
    err("States.Runtime"), tasks={"r": [{"result": {"a": 1}}]})
add(F, "ResultSelector reads $ as the result, not the input",
    one({"Type": "Task", "Resource": "r", "ResultSelector": {"x.$": "$.a"}}), {"a": "input"},
    ok({"x": "result"}), tasks={"r": [{"result": {"a": "result"}}]})
add(F, "ResultSelector can read the context object",
    one({"Type": "Task", "Resource": "r", "ResultSelector": {"n.$": "$$.State.Name"}}), {},
    ok({"n": "S"}), tasks={"r": [{"result": {}}]})

add(F, "Pass passes its input through",
    one({"Type": "Pass"}), {"a": 1}, ok({"a": 1}))
add(F, "Pass with Result and ResultPath (AWS example)",
    one({"Type": "Pass", "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355}, "ResultPath": "$.coords"}),
    {"georefOf": "Home"}, ok({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}}))
add(F, "Pass with Result replaces the input",
    one({"Type": "Pass", "Result": "done"}), {"a": 1}, ok("done"))
add(F, "Pass Result is not a template (.$ kept literally)",
    one({"Type": "Pass", "Result": {"a.$": "$.x"}}), {"x": 1}, ok({"a.$": "$.x"}))
add(F, "Pass with Parameters",
    one({"Type": "Pass", "Parameters": {"b.$": "$.a"}}), {"a": 1}, ok({"b": 1}))
add(F, "Pass with Parameters and ResultPath",
    one({"Type": "Pass", "Parameters": {"b.$": "$.a"}, "ResultPath": "$.p"}), {"a": 1}, ok({"a": 1, "p": {"b": 1}}))
add(F, "Pass with ResultPath null",
    one({"Type": "Pass", "Result": 5, "ResultPath": None}), {"a": 1}, ok({"a": 1}))
add(F, "Pass with InputPath then ResultPath merges into the raw input",
    one({"Type": "Pass", "InputPath": "$.a", "ResultPath": "$.copy"}), {"a": {"b": 2}}, ok({"a": {"b": 2}, "copy": {"b": 2}}))
add(F, "Pass with OutputPath",
    one({"Type": "Pass", "OutputPath": "$.a"}), {"a": [1]}, ok([1]))
add(F, "Pass chain carries data from state to state",
    {"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
        "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "Next": "C"},
        "C": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "End": True}}},
    {}, ok({"sum": 3}))
add(F, "Pass with a scalar input",
    one({"Type": "Pass"}), 42, ok(42))
add(F, "Pass with null input and InputPath null",
    one({"Type": "Pass", "InputPath": None}), None, ok({}))
add(F, "Succeed with InputPath and OutputPath",
    one({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 3}}, ok(3))
add(F, "Succeed passes input through",
    one({"Type": "Succeed"}), {"z": 1}, ok({"z": 1}))
add(F, "Task TimeoutSecondsPath missing in the input is States.Runtime",
    one({"Type": "Task", "Resource": "echo", "TimeoutSecondsPath": "$.t"}), {}, err("States.Runtime"))
add(F, "Task TimeoutSecondsPath present is fine",
    one({"Type": "Task", "Resource": "echo", "TimeoutSecondsPath": "$.t", "HeartbeatSecondsPath": "$.h"}),
    {"t": 10, "h": 5}, ok({"t": 10, "h": 5}))
add(F, "Task TimeoutSecondsPath must be an integer",
    one({"Type": "Task", "Resource": "echo", "TimeoutSecondsPath": "$.t"}), {"t": "ten"}, err("States.Runtime"))


# ---------------------------------------------------------------------------
# Intrinsic functions
# ---------------------------------------------------------------------------
F = "intrinsics.json"


def call(expr, input, expect, name=None, random=None):
    add(F, name or expr, one({"Type": "Pass", "Parameters": {"r.$": expr}}), input,
        ok({"r": expect}) if not isinstance(expect, dict) or "error" not in expect else expect,
        random=random)


def bad(expr, input=None, error="States.IntrinsicFailure", name=None):
    add(F, name or ("fails: " + expr), one({"Type": "Pass", "Parameters": {"r.$": expr}}),
        input if input is not None else {}, err(error))


def bad_def(expr, name=None):
    add(F, name or ("rejected: " + expr), one({"Type": "Pass", "Parameters": {"r.$": expr}}), {},
        invalid("INVALID_PAYLOAD_TEMPLATE"))


# States.Format
call("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav.")
call("States.Format('{} {} {}', $.a, $.b, $.c)", {"a": 1, "b": True, "c": None}, "1 true null")
call("States.Format('{}{}', 'a', 'b')", {}, "ab")
call("States.Format('no placeholders')", {}, "no placeholders")
call("States.Format('x={}', 1.5)", {}, "x=1.5")
call("States.Format('x={}', -3)", {}, "x=-3")
call(r"States.Format('a \{\} {}', 'b')", {}, "a {} b", name="Format escaped braces are literal")
call(r"States.Format('it\'s {}', 'ok')", {}, "it's ok", name="Format escaped quote")
call(r"States.Format('back\\slash {}', 'x')", {}, "back\\slash x", name="Format escaped backslash")
call("States.Format($.t, $.v)", {"t": "v={}", "v": 2}, "v=2", name="Format template from a path")
call("States.Format('{}', States.Format('{}-{}', 'a', 'b'))", {}, "a-b", name="Format nested call")
call("States.Format('{}', $$.Execution.Name)", {}, "exec-1", name="Format with a context path")
call("States.Format( 'spaced {}' , $.a )", {"a": 1}, "spaced 1", name="Format with spaces around arguments")
bad("States.Format('{}', $.obj)", {"obj": {"a": 1}}, name="Format with an object argument fails")
bad("States.Format('{}', $.arr)", {"arr": [1]}, name="Format with an array argument fails")
bad("States.Format($.t, 1)", {"t": "no placeholder"}, name="Format template from a path with the wrong count fails")
bad("States.Format($.t)", {"t": 5}, name="Format template that is not a string fails")
bad("States.Format('{}', $.missing)", {}, error="States.Runtime", name="Format with a missing path fails with States.Runtime")
bad("States.Format('{} {}', 'one')", name="Format with too few arguments fails at run time")
bad("States.Format('{}', 'one', 'two')", name="Format with too many arguments fails at run time")
call("States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit(States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1))",
     {"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/myrecipe/1.0.0"}}, "1.0",
     name="nine nested intrinsic functions (AWS example shape)")
bad_def("States.Format()", name="Format with no arguments is rejected")
bad_def("States.Format('unterminated)", name="unterminated string literal is rejected")
bad_def(r"States.Format('bad \n escape')", name="unknown escape is rejected")

# States.StringToJson / JsonToString
call("States.StringToJson($.someString)", {"someString": "{\"number\": 20}"}, {"number": 20})
call("States.StringToJson('[1, 2]')", {}, [1, 2])
call("States.StringToJson('\"s\"')", {}, "s")
call("States.StringToJson('null')", {}, None)
bad("States.StringToJson('{nope')", name="StringToJson with invalid JSON fails")
bad("States.StringToJson($.n)", {"n": 5}, name="StringToJson with a number fails")
call("States.JsonToString($.someJson)", {"someJson": {"name": "Foo", "year": 2020}}, "{\"name\":\"Foo\",\"year\":2020}")
call("States.JsonToString($.a)", {"a": [1, "x", None]}, "[1,\"x\",null]")
call("States.JsonToString($.s)", {"s": "str"}, "\"str\"")
call("States.StringToJson(States.JsonToString($.o))", {"o": {"k": [1, 2]}}, {"k": [1, 2]}, name="JsonToString round trip")
bad_def("States.JsonToString()", name="JsonToString needs an argument")

# States.Array
call("States.Array('Foo', 2020, $.someJson, null)", {"someJson": {"random": "abcdefghij"}}, ["Foo", 2020, {"random": "abcdefghij"}, None])
call("States.Array()", {}, [], name="Array with no arguments is empty")
call("States.Array(true, false)", {}, [True, False])
call("States.Array(States.Array(1), 2)", {}, [[1], 2])
call("States.Array($.a[*])", {"a": [1, 2]}, [[1, 2]], name="Array with an indefinite path nests the matches")

# States.ArrayPartition
call("States.ArrayPartition($.inputArray, 4)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, [[1, 2, 3, 4], [5, 6, 7, 8], [9]])
call("States.ArrayPartition($.a, 3)", {"a": [1, 2, 3]}, [[1, 2, 3]])
call("States.ArrayPartition($.a, 5)", {"a": [1, 2]}, [[1, 2]])
call("States.ArrayPartition($.a, 1)", {"a": []}, [])
bad("States.ArrayPartition($.a, 0)", {"a": [1]}, name="ArrayPartition chunk 0 fails")
bad("States.ArrayPartition($.a, -1)", {"a": [1]}, name="ArrayPartition negative chunk fails")
bad("States.ArrayPartition($.a, 1.5)", {"a": [1]}, name="ArrayPartition fractional chunk fails")
bad("States.ArrayPartition($.a, 2)", {"a": "nope"}, name="ArrayPartition on a string fails")

# States.ArrayContains
call("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}, True)
call("States.ArrayContains($.a, 10)", {"a": [1, 2]}, False)
call("States.ArrayContains($.a, $.o)", {"a": [{"x": 1}], "o": {"x": 1}}, True, name="ArrayContains compares objects by value")
call("States.ArrayContains($.a, 'x')", {"a": ["x"]}, True)
call("States.ArrayContains($.a, 1)", {"a": [1.0]}, True, name="ArrayContains compares numbers by value")
bad("States.ArrayContains($.a, 1)", {"a": {"x": 1}}, name="ArrayContains on an object fails")

# States.ArrayRange
call("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9])
call("States.ArrayRange(0, 3, 1)", {}, [0, 1, 2, 3])
call("States.ArrayRange(5, 1, -2)", {}, [5, 3, 1])
call("States.ArrayRange(1, 0, 1)", {}, [], name="ArrayRange with start past end is empty")
call("States.ArrayRange(1, 1000, 1)", {}, list(range(1, 1001)), name="ArrayRange of exactly 1000 elements")
call("States.ArrayRange($.s, $.e, $.st)", {"s": 0, "e": 10, "st": 5}, [0, 5, 10])
bad("States.ArrayRange(0, 1000, 1)", name="ArrayRange of 1001 elements fails")
bad("States.ArrayRange(1, 9, 0)", name="ArrayRange with step 0 fails")
bad("States.ArrayRange(1.5, 9, 1)", name="ArrayRange with a fractional start fails")
bad("States.ArrayRange('1', 9, 1)", name="ArrayRange with a string start fails")

# States.ArrayGetItem / ArrayLength / ArrayUnique
call("States.ArrayGetItem($.inputArray, $.index)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}, 6)
call("States.ArrayGetItem($.a, 0)", {"a": ["x"]}, "x")
bad("States.ArrayGetItem($.a, 3)", {"a": [1]}, name="ArrayGetItem out of bounds fails")
bad("States.ArrayGetItem($.a, -1)", {"a": [1]}, name="ArrayGetItem negative index fails")
call("States.ArrayLength($.inputArray)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 9)
call("States.ArrayLength($.a)", {"a": []}, 0)
bad("States.ArrayLength($.a)", {"a": "abc"}, name="ArrayLength of a string fails")
call("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4])
call("States.ArrayUnique($.a)", {"a": [{"k": 1}, {"k": 1}, "x", "x", None, None]}, [{"k": 1}, "x", None])
call("States.ArrayUnique($.a)", {"a": [3, 1, 3, 2, 1]}, [3, 1, 2], name="ArrayUnique keeps first occurrences in order")
bad("States.ArrayUnique($.a)", {"a": 1}, name="ArrayUnique of a number fails")

# States.Base64Encode / Decode
call("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU=")
call("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode")
call("States.Base64Encode('')", {}, "")
call("States.Base64Decode(States.Base64Encode('héllo ✓'))", {}, "héllo ✓", name="Base64 round trip of non-ASCII text")
call("States.Base64Encode($.s)", {"s": "x" * 10000}, base64.b64encode(b"x" * 10000).decode(), name="Base64Encode of exactly 10000 characters")
bad("States.Base64Encode($.s)", {"s": "x" * 10001}, name="Base64Encode of 10001 characters fails")
bad("States.Base64Decode($.s)", {"s": "A" * 10004}, name="Base64Decode of over 10000 characters fails")
bad("States.Base64Decode('not base64!')", name="Base64Decode of invalid data fails")
bad("States.Base64Encode($.n)", {"n": 1}, name="Base64Encode of a number fails")

# States.Hash
for algo, fn in [("MD5", hashlib.md5), ("SHA-1", hashlib.sha1), ("SHA-256", hashlib.sha256),
                 ("SHA-384", hashlib.sha384), ("SHA-512", hashlib.sha512)]:
    call("States.Hash($.Data, $.Algorithm)", {"Data": "input data", "Algorithm": algo},
         fn(b"input data").hexdigest(), name="Hash with " + algo)
    call("States.Hash('', '%s')" % algo, {}, fn(b"").hexdigest(), name="Hash of the empty string with " + algo)
call("States.Hash($.d, 'SHA-256')", {"d": "x" * 10000}, hashlib.sha256(b"x" * 10000).hexdigest(), name="Hash of exactly 10000 characters")
bad("States.Hash($.d, 'SHA-256')", {"d": "x" * 10001}, name="Hash of 10001 characters fails")
bad("States.Hash('a', $.alg)", {"alg": "SHA-999"}, name="Hash with an unknown algorithm from a path fails")
bad("States.Hash('a', $.alg)", {"alg": "sha-256"}, name="Hash algorithm names are case-sensitive")
bad_def("States.Hash('a', 'CRC32')", name="Hash with an unknown literal algorithm is rejected")

# States.JsonMerge
call("States.JsonMerge($.json1, $.json2, false)", {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})
call("States.JsonMerge($.x, $.y, false)", {"x": {}, "y": {"k": 1}}, {"k": 1})
bad("States.JsonMerge($.x, $.y, false)", {"x": [1], "y": {}}, name="JsonMerge of an array fails")
bad("States.JsonMerge($.x, $.y, $.deep)", {"x": {}, "y": {}, "deep": True}, name="JsonMerge deep merge from a path fails")
bad_def("States.JsonMerge($.x, $.y, true)", name="JsonMerge deep merge is rejected")
bad_def("States.JsonMerge($.x, $.y)", name="JsonMerge needs three arguments")

# States.MathRandom / MathAdd
call("States.MathRandom(1, 999)", {}, 1 + int(0.5 * 998), random=0.5, name="MathRandom scales the environment's random number")
call("States.MathRandom(0, 10)", {}, 0, random=0.0, name="MathRandom start is inclusive")
call("States.MathRandom(0, 10)", {}, 9, random=0.9999, name="MathRandom end is exclusive")
call("States.MathRandom($.start, $.end)", {"start": 5, "end": 6}, 5, random=0.7)
bad("States.MathRandom(10, 1)", name="MathRandom with end before start fails")
bad("States.MathRandom(1, 1)", name="MathRandom with end equal to start fails")
bad("States.MathRandom('1', 5)", name="MathRandom with a string fails")
add(F, "MathRandom with a seed is reproducible",
    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"a.$": "States.MathRandom(1, 1000, 42)",
     "b.$": "States.MathRandom(1, 1000, 42)"}, "Next": "B"},
     "B": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEqualsPath": "$.b", "Next": "Same"}], "Default": "Differ"},
     "Same": {"Type": "Succeed", "OutputPath": None}, "Differ": {"Type": "Fail", "Error": "Differ"}}},
    {}, ok({}))
call("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110)
call("States.MathAdd(1, 2)", {}, 3)
call("States.MathAdd(2147483647, 0)", {}, 2147483647)
call("States.MathAdd(-2147483648, -1)", {}, -2147483649, name="MathAdd result may leave the 32-bit range")
bad("States.MathAdd(2147483648, 1)", name="MathAdd operand over 32 bits fails")
bad("States.MathAdd(1.5, 1)", name="MathAdd with a fraction fails")
bad("States.MathAdd('1', 1)", name="MathAdd with a string fails")
call("States.MathAdd($.a, 1)", {"a": 2.0}, 3, name="MathAdd accepts a whole float")

# States.StringSplit
call("States.StringSplit($.inputString, $.splitter)", {"inputString": "1,2,3,4,5", "splitter": ","}, ["1", "2", "3", "4", "5"])
call("States.StringSplit($.inputString, $.splitter)", {"inputString": "This.is+a,test=string", "splitter": ".+,="}, ["This", "is", "a", "test", "string"])
call("States.StringSplit('a,,b', ',')", {}, ["a", "b"], name="StringSplit drops empty pieces")
call("States.StringSplit('abc', ',')", {}, ["abc"])
call("States.StringSplit('', ',')", {}, [])
bad("States.StringSplit($.n, ',')", {"n": 1}, name="StringSplit of a number fails")

# States.UUID
call("States.UUID()", {}, "00000000-0000-4000-8000-000000000001", name="UUID comes from the environment")
add(F, "UUID is fresh per call",
    one({"Type": "Pass", "Parameters": {"a.$": "States.UUID()", "b.$": "States.UUID()"}}), {},
    ok({"a": "00000000-0000-4000-8000-000000000001", "b": "00000000-0000-4000-8000-000000000002"}))
bad_def("States.UUID(1)", name="UUID takes no arguments")

# Parser details
bad_def("States.Nope()", name="unknown function is rejected")
bad_def("States.Format('x'", name="missing closing parenthesis is rejected")
bad_def("States.Format('x') trailing", name="text after the call is rejected")
bad_def("States.Array(1,)", name="trailing comma is rejected")
bad_def("States.Array(1 2)", name="missing comma is rejected")
bad_def("States.Array(" * 12 + "1" + ")" * 12, name="nesting deeper than 10 is rejected")
bad_def("not a path", name="a .$ value that is neither path nor call is rejected")
bad_def("States.Array($.a[)", name="a bad path argument is rejected")
call("States.Array(" * 10 + "1" + ")" * 10, {}, json.loads("[" * 10 + "1" + "]" * 10), name="nesting of 10 calls is accepted")
call("States.Array($.a['x,y'], $.b)", {"a": {"x,y": 1}, "b": 2}, [1, 2], name="a path argument with a quoted comma")
call("States.Array(1e2, -0.5)", {}, [100.0, -0.5], name="number literals in exponent form")


# ---------------------------------------------------------------------------
# Choice
# ---------------------------------------------------------------------------
F = "choice.json"


def choice(rule, default=True):
    """A Choice whose single rule goes to Yes; Default (when present) goes to No."""
    rule = dict(rule, Next="Yes")
    states = {
        "C": {"Type": "Choice", "Choices": [rule]},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True},
    }
    if default:
        states["C"]["Default"] = "No"
    else:
        del states["No"]
    return {"StartAt": "C", "States": states}


def check(rule, input, expected, name=None):
    add(F, name or "%s on %s -> %s" % (json.dumps(rule, sort_keys=True), json.dumps(input), expected),
        choice(rule), input, ok(expected))


def v(op, operand, path="$.v"):
    return {"Variable": path, op: operand}


NUMERIC = [
    ("NumericEquals", 5, 5, "yes"), ("NumericEquals", 5, 6, "no"), ("NumericEquals", 5, 5.0, "yes"),
    ("NumericEquals", 0.1, 0.1, "yes"), ("NumericEquals", -1, -1, "yes"),
    ("NumericGreaterThan", 5, 6, "yes"), ("NumericGreaterThan", 5, 5, "no"), ("NumericGreaterThan", 5, 4.9, "no"),
    ("NumericGreaterThanEquals", 5, 5, "yes"), ("NumericGreaterThanEquals", 5, 4, "no"), ("NumericGreaterThanEquals", 5.5, 5.6, "yes"),
    ("NumericLessThan", 5, 4, "yes"), ("NumericLessThan", 5, 5, "no"), ("NumericLessThan", 0, -0.5, "yes"),
    ("NumericLessThanEquals", 5, 5, "yes"), ("NumericLessThanEquals", 5, 6, "no"), ("NumericLessThanEquals", 5, -10, "yes"),
    ("NumericEquals", 9007199254740993, 9007199254740993, "yes")
]
for op, operand, value, want in NUMERIC:
    check(v(op, operand), {"v": value}, want)
for op in ["NumericEquals", "NumericGreaterThan", "NumericLessThan", "NumericGreaterThanEquals", "NumericLessThanEquals"]:
    check(v(op, 1), {"v": "1"}, "no", name=op + " against a string is false, not an error")
    check(v(op, 1), {"v": None}, "no", name=op + " against null is false")
    check(v(op + "Path", "$.w"), {"v": 3, "w": 3}, "yes" if "Equals" in op else "no", name=op + "Path with equal values")
    check(v(op + "Path", "$.w"), {"v": 3, "w": "3"}, "no", name=op + "Path against a string operand is false")

STRING = [
    ("StringEquals", "abc", "abc", "yes"), ("StringEquals", "abc", "ABC", "no"), ("StringEquals", "", "", "yes"),
    ("StringGreaterThan", "b", "c", "yes"), ("StringGreaterThan", "b", "b", "no"), ("StringGreaterThan", "b", "a", "no"),
    ("StringGreaterThanEquals", "b", "b", "yes"), ("StringGreaterThanEquals", "b", "ba", "yes"), ("StringGreaterThanEquals", "b", "a", "no"),
    ("StringLessThan", "b", "a", "yes"), ("StringLessThan", "b", "B", "yes"), ("StringLessThan", "b", "b", "no"),
    ("StringLessThanEquals", "b", "b", "yes"), ("StringLessThanEquals", "abc", "abd", "no"), ("StringLessThanEquals", "abc", "ab", "yes"),
]
for op, operand, value, want in STRING:
    check(v(op, operand), {"v": value}, want)
for op in ["StringEquals", "StringGreaterThan", "StringLessThan", "StringGreaterThanEquals", "StringLessThanEquals"]:
    check(v(op, "1"), {"v": 1}, "no", name=op + " against a number is false")
    check(v(op + "Path", "$.w"), {"v": "m", "w": "m"}, "yes" if "Equals" in op else "no", name=op + "Path with equal strings")

MATCHES = [
    ("log-*.txt", "log-2024-01.txt", "yes"), ("log-*.txt", "log-.txt", "yes"), ("log-*.txt", "log-2024.csv", "no"),
    ("*", "", "yes"), ("*", "anything", "yes"), ("a*b*c", "aXXbYYc", "yes"), ("a*b*c", "aXXbYY", "no"),
    ("exact", "exact", "yes"), ("exact", "exactly", "no"), ("*.png", "x.png", "yes"), ("*.png", "x.png.bak", "no"),
    ("a\\*b", "a*b", "yes"), ("a\\*b", "aXb", "no"), ("a\\\\b", "a\\b", "yes"), ("**x", "x", "yes"),
    ("*ab", "aab", "yes"), ("a*a", "a", "no"), ("ä*ö", "äüö", "yes"),
]
for pattern, value, want in MATCHES:
    check(v("StringMatches", pattern), {"v": value}, want)
check(v("StringMatches", "*"), {"v": 1}, "no", name="StringMatches against a number is false")

BOOL = [(True, True, "yes"), (True, False, "no"), (False, False, "yes")]
for operand, value, want in BOOL:
    check(v("BooleanEquals", operand), {"v": value}, want)
check(v("BooleanEquals", True), {"v": "true"}, "no", name="BooleanEquals against the string true is false")
check(v("BooleanEqualsPath", "$.w"), {"v": True, "w": True}, "yes")
check(v("BooleanEqualsPath", "$.w"), {"v": True, "w": 1}, "no", name="BooleanEqualsPath against a number is false")

TS = [
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00Z", "yes"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14T03:59:00+02:00", "yes"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00.000Z", "yes"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:01Z", "no"),
    ("TimestampGreaterThan", "2016-03-14T01:59:00Z", "2016-03-14T01:59:01Z", "yes"),
    ("TimestampGreaterThan", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00Z", "no"),
    ("TimestampGreaterThanEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00Z", "yes"),
    ("TimestampLessThan", "2016-03-14T01:59:00Z", "2015-12-31T23:59:59Z", "yes"),
    ("TimestampLessThan", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00.001Z", "no"),
    ("TimestampLessThanEquals", "2016-03-14T01:59:00Z", "2016-03-14T01:59:00Z", "yes"),
    ("TimestampLessThanEquals", "2016-03-14T01:59:00Z", "2017-01-01T00:00:00Z", "no"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "2016-03-14t01:59:00Z", "no"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", "not a time", "no"),
    ("TimestampEquals", "2016-03-14T01:59:00Z", 12, "no"),
]
for op, operand, value, want in TS:
    check(v(op, operand), {"v": value}, want)
check(v("TimestampEqualsPath", "$.w"), {"v": "2020-01-01T00:00:00Z", "w": "2020-01-01T00:00:00Z"}, "yes")
check(v("TimestampLessThanPath", "$.w"), {"v": "2020-01-01T00:00:00Z", "w": "2021-01-01T00:00:00Z"}, "yes")
check(v("TimestampGreaterThanPath", "$.w"), {"v": "2020-01-01T00:00:00Z", "w": "bad"}, "no", name="TimestampGreaterThanPath with an invalid operand is false")
check(v("TimestampLessThanEqualsPath", "$.w"), {"v": "2020-01-01T00:00:00Z", "w": "2020-01-01T00:00:00Z"}, "yes", name="TimestampLessThanEqualsPath on equal times")
check(v("TimestampLessThanEqualsPath", "$.w"), {"v": "2020-01-02T00:00:00Z", "w": "2020-01-01T00:00:00Z"}, "no", name="TimestampLessThanEqualsPath on a later time")
check(v("TimestampGreaterThanEqualsPath", "$.w"), {"v": "2020-01-01T00:00:00Z", "w": "2020-01-01T00:00:00Z"}, "yes", name="TimestampGreaterThanEqualsPath on equal times")
check(v("TimestampGreaterThanEqualsPath", "$.w"), {"v": "2019-12-31T23:59:59Z", "w": "2020-01-01T00:00:00Z"}, "no", name="TimestampGreaterThanEqualsPath on an earlier time")

TYPES = [
    ("IsNull", True, None, "yes"), ("IsNull", True, 0, "no"), ("IsNull", False, "x", "yes"), ("IsNull", False, None, "no"),
    ("IsNumeric", True, 1, "yes"), ("IsNumeric", True, 1.5, "yes"), ("IsNumeric", True, "1", "no"), ("IsNumeric", False, "1", "yes"),
    ("IsString", True, "s", "yes"), ("IsString", True, 1, "no"), ("IsString", False, None, "yes"),
    ("IsBoolean", True, False, "yes"), ("IsBoolean", True, "false", "no"), ("IsBoolean", False, 0, "yes"),
    ("IsTimestamp", True, "2016-03-14T01:59:00Z", "yes"), ("IsTimestamp", True, "2016-03-14", "no"),
    ("IsTimestamp", True, 1457920740, "no"), ("IsTimestamp", False, "yesterday", "yes"),
]
for op, operand, value, want in TYPES:
    check(v(op, operand), {"v": value}, want)
check(v("IsPresent", True), {"v": None}, "yes", name="IsPresent true on a null field")
check(v("IsPresent", True), {}, "no", name="IsPresent true on a missing field")
check(v("IsPresent", False), {}, "yes", name="IsPresent false on a missing field")
check(v("IsPresent", False), {"v": 1}, "no", name="IsPresent false on a present field")
check(v("IsPresent", True, "$.a.b.c"), {"a": 1}, "no", name="IsPresent through a scalar is false")
check(v("IsPresent", True, "$.a[3]"), {"a": [1]}, "no", name="IsPresent past an array's end is false")

add(F, "a missing Variable is States.Runtime", choice(v("StringEquals", "x")), {}, err("States.Runtime", "$.v"))
add(F, "a missing Variable in IsNull is States.Runtime", choice(v("IsNull", True)), {}, err("States.Runtime"))
add(F, "a missing ...Path operand is States.Runtime", choice(v("NumericEqualsPath", "$.w")), {"v": 1}, err("States.Runtime", "$.w"))
add(F, "no match and no Default is States.NoChoiceMatched", choice(v("StringEquals", "x"), default=False), {"v": "y"},
    err("States.NoChoiceMatched"))
add(F, "no match goes to Default", choice(v("StringEquals", "x")), {"v": "y"}, ok("no"))

check({"And": [v("NumericGreaterThanEquals", 20), v("NumericLessThan", 30)]}, {"v": 25}, "yes", name="And: both hold")
check({"And": [v("NumericGreaterThanEquals", 20), v("NumericLessThan", 30)]}, {"v": 30}, "no", name="And: one fails")
check({"Or": [v("StringEquals", "a"), v("StringEquals", "b")]}, {"v": "b"}, "yes", name="Or: second holds")
check({"Or": [v("StringEquals", "a"), v("StringEquals", "b")]}, {"v": "c"}, "no", name="Or: none holds")
check({"Not": v("StringEquals", "a")}, {"v": "b"}, "yes", name="Not inverts false")
check({"Not": v("StringEquals", "a")}, {"v": "a"}, "no", name="Not inverts true")
check({"Not": {"Not": v("IsNull", True)}}, {"v": None}, "yes", name="double Not")
check({"And": [{"Or": [v("IsString", True), v("IsNumeric", True)]}, {"Not": v("StringEquals", "bad")}]}, {"v": 3}, "yes", name="nested And/Or/Not")
check({"Or": [v("IsPresent", False), v("NumericEquals", 1)]}, {}, "yes", name="Or short-circuits before a missing path")
check({"And": [v("IsPresent", True), v("NumericEquals", 1)]}, {}, "no", name="And short-circuits before a missing path")
add(F, "And evaluates a missing path after a true operand: States.Runtime",
    choice({"And": [v("IsPresent", False), v("NumericEquals", 1)]}), {}, err("States.Runtime"))

add(F, "the first matching rule wins",
    {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [
        {"Variable": "$.v", "NumericGreaterThan": 1, "Next": "A"},
        {"Variable": "$.v", "NumericGreaterThan": 0, "Next": "B"}]},
        "A": {"Type": "Pass", "Result": "A", "End": True}, "B": {"Type": "Pass", "Result": "B", "End": True}}},
    {"v": 5}, ok("A"))
add(F, "Choice InputPath and OutputPath shape what the next state sees",
    {"StartAt": "C", "States": {"C": {"Type": "Choice", "InputPath": "$.a", "OutputPath": "$.b",
        "Choices": [{"Variable": "$.k", "StringEquals": "x", "Next": "D"}]},
        "D": {"Type": "Succeed"}}},
    {"a": {"k": "x", "b": {"z": 1}}}, ok({"z": 1}))
add(F, "Choice passes its input unchanged by default",
    {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.k", "IsPresent": True, "Next": "D"}]},
     "D": {"Type": "Succeed"}}}, {"k": [1, 2]}, ok({"k": [1, 2]}))
add(F, "Choice Variable can read the context object",
    {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$$.State.Name", "StringEquals": "C", "Next": "D"}]},
     "D": {"Type": "Succeed"}}}, {}, ok({}))
add(F, "a Choice loop counting up with MathAdd",
    {"StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Result": {"i": 0}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.i", "NumericLessThan": 5, "Next": "Inc"}], "Default": "Done"},
        "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "Check"},
        "Done": {"Type": "Succeed"}}}, {}, ok({"i": 5}))
check(v("NumericEquals", 3, "$.a[1]"), {"a": [1, 3]}, "yes", name="Variable with an array index")
check(v("StringEquals", "x", "$['odd key']"), {"odd key": "x"}, "yes", name="Variable in bracket notation")


# ---------------------------------------------------------------------------
# Errors, Retry and Catch
# ---------------------------------------------------------------------------
F = "errors.json"


def task(retry=None, catch=None, **extra):
    s = {"Type": "Task", "Resource": "work", "Next": "Done"}
    if retry is not None:
        s["Retry"] = retry
    states = {"T": s, "Done": {"Type": "Succeed"}}
    if catch is not None:
        s["Catch"] = catch
        states["Handler"] = {"Type": "Pass", "End": True}
    s.update(extra)
    return {"StartAt": "T", "States": states}


def fails(error, times=None, cause="boom", then=None):
    """A task script: fail `times` times (forever when None), then return `then`."""
    f = {"error": error, "cause": cause}
    if times is None:
        return {"work": [f]}
    return {"work": [f] * times + [{"result": then}]}


add(F, "an uncaught task error fails the execution with its name and cause",
    task(), {}, err("MyError", cause="boom"), tasks=fails("MyError"))
add(F, "retry with defaults: 3 attempts at 1s, 2s, 4s, then fail",
    task(retry=[{"ErrorEquals": ["MyError"]}]), {}, dict(err("MyError"), delays_ms=[1000, 2000, 4000]), tasks=fails("MyError"))
add(F, "retry succeeds on the second attempt",
    task(retry=[{"ErrorEquals": ["MyError"]}]), {}, dict(ok("ok"), delays_ms=[1000]),
    tasks=fails("MyError", 1, then="ok"))
add(F, "IntervalSeconds and BackoffRate (AWS example: 3, 2.0)",
    task(retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "MaxAttempts": 2, "BackoffRate": 2.0}]), {},
    dict(err("E"), delays_ms=[3000, 6000]), tasks=fails("E"))
add(F, "BackoffRate 1.0 keeps the interval constant",
    task(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 1.0}]), {},
    dict(err("E"), delays_ms=[2000, 2000, 2000]), tasks=fails("E"))
add(F, "fractional BackoffRate",
    task(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.5}]), {},
    dict(err("E"), delays_ms=[1000, 1500, 2250]), tasks=fails("E"))
add(F, "MaxDelaySeconds caps the delay",
    task(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 2, "MaxAttempts": 4, "BackoffRate": 3, "MaxDelaySeconds": 10}]), {},
    dict(err("E"), delays_ms=[2000, 6000, 10000, 10000]), tasks=fails("E"))
add(F, "JitterStrategy FULL scales the delay by the random number",
    task(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 4, "MaxAttempts": 2, "JitterStrategy": "FULL"}]), {},
    dict(err("E"), delays_ms=[1000, 2000]), tasks=fails("E"), random=0.25)
add(F, "JitterStrategy NONE ignores the random number",
    task(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 4, "MaxAttempts": 1, "JitterStrategy": "NONE"}]), {},
    dict(err("E"), delays_ms=[4000]), tasks=fails("E"), random=0.25)
add(F, "MaxAttempts 0 never retries",
    task(retry=[{"ErrorEquals": ["E"], "MaxAttempts": 0}]), {}, dict(err("E"), delays_ms=[]), tasks=fails("E"))
add(F, "a retrier that does not match does not retry",
    task(retry=[{"ErrorEquals": ["Other"]}]), {}, dict(err("E"), delays_ms=[]), tasks=fails("E"))
add(F, "the first matching retrier is used, and only it",
    task(retry=[{"ErrorEquals": ["E"], "MaxAttempts": 1, "IntervalSeconds": 5},
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "IntervalSeconds": 1}]), {},
    dict(err("E"), delays_ms=[5000]), tasks=fails("E"))
add(F, "each retrier keeps its own attempt count",
    task(retry=[{"ErrorEquals": ["A"], "MaxAttempts": 1, "IntervalSeconds": 1},
                {"ErrorEquals": ["B"], "MaxAttempts": 1, "IntervalSeconds": 7}]), {},
    dict(ok({}), delays_ms=[1000, 7000]),
    tasks={"work": [{"error": "A"}, {"error": "B"}, {"result": {}}]})
add(F, "States.ALL retries a custom error",
    task(retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]), {}, dict(err("Custom"), delays_ms=[1000]), tasks=fails("Custom"))
add(F, "States.ALL retries States.Timeout",
    task(retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]), {}, dict(err("States.Timeout"), delays_ms=[1000]),
    tasks=fails("States.Timeout"))
add(F, "States.TaskFailed retries a custom error",
    task(retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]), {}, dict(err("Custom"), delays_ms=[1000]),
    tasks=fails("Custom"))
add(F, "States.TaskFailed does not match States.Timeout",
    task(retry=[{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]), {}, dict(err("States.Timeout"), delays_ms=[]),
    tasks=fails("States.Timeout"))
add(F, "States.Timeout matches States.Timeout",
    task(retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1}]), {}, dict(err("States.Timeout"), delays_ms=[1000]),
    tasks=fails("States.Timeout"))
add(F, "States.Timeout also matches States.HeartbeatTimeout",
    task(retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1}]), {}, dict(err("States.HeartbeatTimeout"), delays_ms=[1000]),
    tasks=fails("States.HeartbeatTimeout"))
add(F, "States.HeartbeatTimeout matches itself",
    task(retry=[{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}]), {}, dict(err("States.HeartbeatTimeout"), delays_ms=[1000]),
    tasks=fails("States.HeartbeatTimeout"))
add(F, "States.HeartbeatTimeout does not match States.Timeout",
    task(retry=[{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}]), {}, dict(err("States.Timeout"), delays_ms=[]),
    tasks=fails("States.Timeout"))
add(F, "States.ALL does not retry States.Runtime",
    task(retry=[{"ErrorEquals": ["States.ALL"]}]), {}, dict(err("States.Runtime"), delays_ms=[]), tasks=fails("States.Runtime"))
add(F, "States.ALL does not catch States.Runtime",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]), {}, err("States.Runtime"), tasks=fails("States.Runtime"))
add(F, "States.Runtime is not caught even by name",
    task(catch=[{"ErrorEquals": ["States.Runtime"], "Next": "Handler"}]), {}, err("States.Runtime"), tasks=fails("States.Runtime"))
add(F, "States.ALL does not catch States.DataLimitExceeded",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]), {}, err("States.DataLimitExceeded"),
    tasks=fails("States.DataLimitExceeded"))
add(F, "States.DataLimitExceeded is caught by name",
    task(catch=[{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Handler"}]), {},
    ok({"Error": "States.DataLimitExceeded", "Cause": "boom"}), tasks=fails("States.DataLimitExceeded"))
add(F, "error names are case-sensitive",
    task(catch=[{"ErrorEquals": ["myerror"], "Next": "Handler"}]), {}, err("MyError"), tasks=fails("MyError"))
add(F, "a runtime error in the state itself (bad InputPath) is not caught by States.ALL",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}], InputPath="$.missing"), {}, err("States.Runtime"))

add(F, "Catch replaces the input with the error output by default",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]), {"in": 1},
    ok({"Error": "MyError", "Cause": "boom"}), tasks=fails("MyError"))
add(F, "Catch with ResultPath keeps the input (AWS example: $.error-info)",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler", "ResultPath": "$.error-info"}]), {"foo": "bar"},
    ok({"foo": "bar", "error-info": {"Error": "MyError", "Cause": "boom"}}), tasks=fails("MyError"))
add(F, "Catch with ResultPath null keeps the input alone",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler", "ResultPath": None}]), {"foo": "bar"},
    ok({"foo": "bar"}), tasks=fails("MyError"))
add(F, "Catch with a nested ResultPath creates objects",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler", "ResultPath": "$.a.b"}]), {},
    ok({"a": {"b": {"Error": "MyError", "Cause": "boom"}}}), tasks=fails("MyError"))
add(F, "the first matching catcher wins",
    {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True, "Catch": [
        {"ErrorEquals": ["Other"], "Next": "H1"}, {"ErrorEquals": ["MyError"], "Next": "H2"},
        {"ErrorEquals": ["States.ALL"], "Next": "H3"}]},
        "H1": {"Type": "Pass", "Result": 1, "End": True}, "H2": {"Type": "Pass", "Result": 2, "End": True},
        "H3": {"Type": "Pass", "Result": 3, "End": True}}}, {}, ok(2), tasks=fails("MyError"))
add(F, "a catcher with several names",
    task(catch=[{"ErrorEquals": ["A", "B", "MyError"], "Next": "Handler", "ResultPath": "$.e"}]), {},
    ok({"e": {"Error": "MyError", "Cause": "boom"}}), tasks=fails("MyError"))
add(F, "retries run out, then the catcher takes over",
    task(retry=[{"ErrorEquals": ["MyError"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 1}],
         catch=[{"ErrorEquals": ["MyError"], "Next": "Handler", "ResultPath": "$.e"}]), {"x": 1},
    dict(ok({"x": 1, "e": {"Error": "MyError", "Cause": "boom"}}), delays_ms=[1000, 1000]), tasks=fails("MyError"))
add(F, "Catch ResultPath into a scalar input fails the execution",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler", "ResultPath": "$.e"}]), "scalar",
    err("MyError"), tasks=fails("MyError"))
add(F, "an intrinsic failure in Parameters is caught as States.IntrinsicFailure",
    task(catch=[{"ErrorEquals": ["States.IntrinsicFailure"], "Next": "Handler", "ResultPath": "$.e"}],
         Parameters={"x.$": "States.ArrayGetItem($.a, 5)"}), {"a": []},
    ok({"a": [], "e": {"Error": "States.IntrinsicFailure",
        "Cause": "An error occurred while executing the state 'T'. Invalid arguments in States.ArrayGetItem: index 5 is out of bounds for an array of length 0"}}))
add(F, "a ResultPathMatchFailure is caught by States.ALL",
    task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handler", "ResultPath": None}], ResultPath="$.x.y"),
    {"x": "s"}, ok({"x": "s"}), tasks={"work": [{"result": 1}]})
add(F, "a ResultPathMatchFailure is retried by name",
    task(retry=[{"ErrorEquals": ["States.ResultPathMatchFailure"], "MaxAttempts": 1}], ResultPath="$.x.y"),
    {"x": "s"}, dict(err("States.ResultPathMatchFailure"), delays_ms=[1000]), tasks={"work": [{"result": 1}]})
add(F, "Catch output feeds the handler state",
    {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.err"}]},
        "H": {"Type": "Pass", "Parameters": {"msg.$": "States.Format('{}: {}', $.err.Error, $.err.Cause)"}, "End": True}}},
    {}, ok({"msg": "MyError: boom"}), tasks=fails("MyError"))
add(F, "Parallel branch failure is caught on the Parallel state",
    {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "BranchErr", "Cause": "b"}}}],
        "Catch": [{"ErrorEquals": ["BranchErr"], "Next": "H"}]},
        "H": {"Type": "Pass", "End": True}}}, {}, ok({"Error": "BranchErr", "Cause": "b"}))
add(F, "Parallel retry re-runs all branches",
    {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "work", "End": True}}}],
        "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 2}]}}}, {},
    dict(ok([{"r": 1}]), delays_ms=[1000, 2000]), tasks={"work": [{"error": "E"}, {"error": "E"}, {"result": {"r": 1}}]})
add(F, "Map iteration failure is caught on the Map state",
    {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Task", "Resource": "work", "End": True}}}, "ItemsPath": "$.l",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.e"}]},
        "H": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}}, {"l": [1]}, ok("E"), tasks=fails("E"))


# ---------------------------------------------------------------------------
# Wait, Fail, Parallel, Map
# ---------------------------------------------------------------------------
F = "states.json"
add(F, "Wait Seconds passes input through", one({"Type": "Wait", "Seconds": 10}), {"a": 1}, ok({"a": 1}))
add(F, "Wait Seconds 0", one({"Type": "Wait", "Seconds": 0}), {"a": 1}, ok({"a": 1}))
add(F, "Wait Timestamp", one({"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z"}), {"a": 1}, ok({"a": 1}))
add(F, "Wait SecondsPath", one({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 5}, ok({"s": 5}))
add(F, "Wait SecondsPath missing is States.Runtime", one({"Type": "Wait", "SecondsPath": "$.s"}), {}, err("States.Runtime"))
add(F, "Wait SecondsPath negative is States.Runtime", one({"Type": "Wait", "SecondsPath": "$.s"}), {"s": -1}, err("States.Runtime"))
add(F, "Wait SecondsPath string is States.Runtime", one({"Type": "Wait", "SecondsPath": "$.s"}), {"s": "5"}, err("States.Runtime"))
add(F, "Wait SecondsPath fraction is States.Runtime", one({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 1.5}, err("States.Runtime"))
add(F, "Wait TimestampPath", one({"Type": "Wait", "TimestampPath": "$.t"}), {"t": "2016-03-14T01:59:00Z"}, ok({"t": "2016-03-14T01:59:00Z"}))
add(F, "Wait TimestampPath with an offset", one({"Type": "Wait", "TimestampPath": "$.t"}), {"t": "2016-03-14T01:59:00+05:30"}, ok({"t": "2016-03-14T01:59:00+05:30"}))
add(F, "Wait TimestampPath invalid is States.Runtime", one({"Type": "Wait", "TimestampPath": "$.t"}), {"t": "tomorrow"}, err("States.Runtime"))
add(F, "Wait TimestampPath lowercase t is States.Runtime", one({"Type": "Wait", "TimestampPath": "$.t"}), {"t": "2016-03-14t01:59:00Z"}, err("States.Runtime"))
add(F, "Wait InputPath/OutputPath", one({"Type": "Wait", "Seconds": 1, "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 2}}, ok(2))
add(F, "Wait SecondsPath reads the effective input", one({"Type": "Wait", "SecondsPath": "$.s", "InputPath": "$.a"}), {"a": {"s": 1}}, ok({"s": 1}))

add(F, "Fail with Error and Cause", one({"Type": "Fail", "Error": "ErrorA", "Cause": "Kaiju attack"}), {}, err("ErrorA", cause="Kaiju attack"))
add(F, "Fail with only Error", one({"Type": "Fail", "Error": "ErrorA"}), {}, err("ErrorA", cause=""))
add(F, "Fail with ErrorPath and CausePath", one({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}), {"e": "E1", "c": "C1"}, err("E1", cause="C1"))
add(F, "Fail ErrorPath reading the context", one({"Type": "Fail", "ErrorPath": "$$.State.Name", "Cause": "x"}), {}, err("S", cause="x"))
add(F, "Fail CausePath with States.Format",
    one({"Type": "Fail", "Error": "E", "CausePath": "States.Format('this is the error: {}, and this is the cause: {}', $.Error, $.Cause)"}),
    {"Error": "Oops", "Cause": "Because"}, err("E", cause="this is the error: Oops, and this is the cause: Because"))
add(F, "Fail ErrorPath with States.JsonToString", one({"Type": "Fail", "ErrorPath": "States.JsonToString($.e)"}), {"e": [1]}, err("[1]"))
add(F, "Fail CausePath with States.UUID", one({"Type": "Fail", "Error": "E", "CausePath": "States.UUID()"}), {}, err("E", cause="00000000-0000-4000-8000-000000000001"))
add(F, "Fail CausePath with States.Base64Decode", one({"Type": "Fail", "Error": "E", "CausePath": "States.Base64Decode($.b)"}), {"b": "aGk="}, err("E", cause="hi"))
add(F, "Fail ErrorPath with States.ArrayGetItem", one({"Type": "Fail", "ErrorPath": "States.ArrayGetItem($.l, 1)", "Cause": "c"}), {"l": ["a", "b"]}, err("b", cause="c"))
add(F, "Fail ErrorPath to a missing field is States.Runtime", one({"Type": "Fail", "ErrorPath": "$.e"}), {}, err("States.Runtime"))
add(F, "Fail ErrorPath to a number is States.Runtime", one({"Type": "Fail", "ErrorPath": "$.e"}), {"e": 5}, err("States.Runtime"))

BR = lambda result: {"StartAt": "B%s" % json.dumps(result), "States": {"B%s" % json.dumps(result): {"Type": "Pass", "Result": result, "End": True}}}
add(F, "Parallel collects branch outputs in branch order",
    one({"Type": "Parallel", "Branches": [BR(1), BR("two"), BR({"three": 3})]}), {}, ok([1, "two", {"three": 3}]))
add(F, "Parallel gives every branch the same input",
    one({"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                                          {"StartAt": "C", "States": {"C": {"Type": "Pass", "OutputPath": "$.a", "End": True}}}]}),
    {"a": 1}, ok([{"a": 1}, 1]))
add(F, "Parallel Parameters shape the branch input",
    one({"Type": "Parallel", "Parameters": {"x.$": "$.a"}, "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}]}),
    {"a": 1}, ok([{"x": 1}]))
add(F, "Parallel ResultSelector and ResultPath",
    one({"Type": "Parallel", "ResultSelector": {"first.$": "$[0]", "second.$": "$[1]"}, "ResultPath": "$.r",
         "Branches": [BR(1), BR(2)]}), {"in": True}, ok({"in": True, "r": {"first": 1, "second": 2}}))
add(F, "Parallel flattening with OutputPath",
    one({"Type": "Parallel", "OutputPath": "$[1]", "Branches": [BR(1), BR(2)]}), {}, ok(2))
add(F, "Parallel with nested Parallel",
    one({"Type": "Parallel", "Branches": [{"StartAt": "Inner", "States": {"Inner": {"Type": "Parallel", "End": True,
        "Branches": [BR("a"), BR("b")]}}}]}), {}, ok([["a", "b"]]))
add(F, "Parallel branch failure fails the state",
    one({"Type": "Parallel", "Branches": [BR(1), {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Bad", "Cause": "c"}}}]}),
    {}, err("Bad"))
add(F, "Parallel branch ending in Succeed",
    one({"Type": "Parallel", "Branches": [{"StartAt": "Fin", "States": {"Fin": {"Type": "Succeed", "OutputPath": "$.k"}}}]}),
    {"k": 9}, ok([9]))

PROC = {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}
add(F, "Map over the whole input array",
    one({"Type": "Map", "ItemProcessor": PROC}), [1, 2, 3], ok([1, 2, 3]))
add(F, "Map ItemsPath",
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": PROC}), {"items": ["a", "b"]}, ok(["a", "b"]))
add(F, "Map over an empty array",
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": PROC}), {"items": []}, ok([]))
add(F, "Map ItemsPath to a non-array is States.Runtime",
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": PROC}), {"items": {"a": 1}}, err("States.Runtime"))
add(F, "Map ItemsPath missing is States.Runtime",
    one({"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": PROC}), {}, err("States.Runtime"))
add(F, "Map ItemSelector with Map.Item context (AWS example)",
    one({"Type": "Map", "ItemsPath": "$.detail.shipped", "ItemSelector": {
        "parcel.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "courier.$": "$.delivery-partner"},
        "ItemProcessor": PROC}),
    {"delivery-partner": "UQS", "detail": {"shipped": [{"prime": "true", "quantity": 1}, {"prime": "false", "quantity": 2}]}},
    ok([{"parcel": {"prime": "true", "quantity": 1}, "index": 0, "courier": "UQS"},
        {"parcel": {"prime": "false", "quantity": 2}, "index": 1, "courier": "UQS"}]))
add(F, "Map legacy Iterator and Parameters",
    one({"Type": "Map", "ItemsPath": "$.l", "Parameters": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}, "Iterator": PROC}),
    {"l": ["x"]}, ok([{"v": "x", "i": 0}]))
add(F, "Map ItemSelector keeps the rest of the context",
    one({"Type": "Map", "ItemSelector": {"e.$": "$$.Execution.Name", "v.$": "$$.Map.Item.Value"}, "ItemProcessor": PROC}),
    [7], ok([{"e": "exec-1", "v": 7}]))
add(F, "Map ResultPath and ResultSelector",
    one({"Type": "Map", "ItemsPath": "$.l", "ResultSelector": {"n.$": "States.ArrayLength($)"}, "ResultPath": "$.count", "ItemProcessor": PROC}),
    {"l": [1, 2, 3]}, ok({"l": [1, 2, 3], "count": {"n": 3}}))
add(F, "Map iterations run the processor's data flow",
    one({"Type": "Map", "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Pass",
        "Parameters": {"double.$": "States.MathAdd($.n, $.n)"}, "End": True}}}}),
    [{"n": 1}, {"n": 5}], ok([{"double": 2}, {"double": 10}]))
add(F, "Map InputPath then ItemsPath",
    one({"Type": "Map", "InputPath": "$.outer", "ItemsPath": "$.l", "ItemSelector": {"x.$": "$.tag", "v.$": "$$.Map.Item.Value"},
         "ItemProcessor": PROC}),
    {"outer": {"l": [1], "tag": "t"}}, ok([{"x": "t", "v": 1}]))
add(F, "Map ItemsPath from the context object",
    one({"Type": "Map", "ItemsPath": "$$.Execution.Input.l", "ItemProcessor": PROC}), {"l": [4, 5]}, ok([4, 5]))
add(F, "Map with MaxConcurrency and ProcessorConfig INLINE",
    one({"Type": "Map", "MaxConcurrency": 2, "ItemProcessor": dict(PROC, ProcessorConfig={"Mode": "INLINE"})}), [1], ok([1]))
add(F, "Map MaxConcurrencyPath missing is States.Runtime",
    one({"Type": "Map", "MaxConcurrencyPath": "$.mc", "ItemsPath": "$.l", "ItemProcessor": PROC}), {"l": [1]}, err("States.Runtime"))
add(F, "Map item failure fails the state",
    one({"Type": "Map", "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ItemErr"}}}}), [1], err("ItemErr"))
add(F, "Map ToleratedFailureCount tolerates failures",
    one({"Type": "Map", "ToleratedFailureCount": 1, "ItemProcessor": {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
        "F": {"Type": "Fail", "Error": "Two"}, "P": {"Type": "Pass", "End": True}}}}), [1, 2, 3], ok([1, None, 3]))
add(F, "Map ToleratedFailurePercentage exceeded",
    one({"Type": "Map", "ToleratedFailurePercentage": 10, "ItemProcessor": {"StartAt": "F", "States": {
        "F": {"Type": "Fail", "Error": "E"}}}}), [1, 2], err("States.ExceedToleratedFailureThreshold"))
add(F, "Map nested in Map",
    one({"Type": "Map", "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Map", "End": True, "ItemProcessor": PROC}}}}),
    [[1, 2], [3]], ok([[1, 2], [3]]))
add(F, "Map inside Parallel",
    one({"Type": "Parallel", "Branches": [{"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": PROC}}}]}),
    [1], ok([[1]]))

add(F, "Map ToleratedFailureCountPath from the input",
    one({"Type": "Map", "ItemsPath": "$.l", "ToleratedFailureCountPath": "$.tol", "ItemProcessor": {"StartAt": "F2", "States": {
        "F2": {"Type": "Fail", "Error": "E"}}}}), {"l": [1, 2], "tol": 2}, ok([None, None]))
add(F, "Map ToleratedFailurePercentagePath from the input",
    one({"Type": "Map", "ItemsPath": "$.l", "ToleratedFailurePercentagePath": "$.tol", "ItemProcessor": {"StartAt": "F3", "States": {
        "F3": {"Type": "Fail", "Error": "E"}}}}), {"l": [1, 2], "tol": 40}, err("States.ExceedToleratedFailureThreshold"))
add(F, "Map ToleratedFailurePercentagePath out of range is States.Runtime",
    one({"Type": "Map", "ItemsPath": "$.l", "ToleratedFailurePercentagePath": "$.tol", "ItemProcessor": PROC}), {"l": [1], "tol": 150}, err("States.Runtime"))
add(F, "Map MaxConcurrencyPath from the input",
    one({"Type": "Map", "ItemsPath": "$.l", "MaxConcurrencyPath": "$.mc", "ItemProcessor": PROC}), {"l": [1, 2], "mc": 1}, ok([1, 2]))
add(F, "Map MaxConcurrencyPath negative is States.Runtime",
    one({"Type": "Map", "ItemsPath": "$.l", "MaxConcurrencyPath": "$.mc", "ItemProcessor": PROC}), {"l": [1], "mc": -1}, err("States.Runtime"))
add(F, "Map with ItemReader leaves reading items to the engine (no items here)",
    one({"Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}},
         "ItemProcessor": dict(PROC, ProcessorConfig={"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"})}), {}, ok([]))
add(F, "States.NoChoiceMatched in a branch is caught by States.ALL on the Parallel state",
    {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "Ch", "States": {
            "Ch": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Ok"}]},
            "Ok": {"Type": "Succeed"}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.e"}], "End": True},
        "H": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}},
    {}, ok("States.NoChoiceMatched"))
add(F, "States.TaskFailed catches States.IntrinsicFailure",
    {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "echo", "Parameters": {"x.$": "States.StringToJson('{')"},
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "H", "ResultPath": "$.e"}], "End": True},
        "H": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}}, {}, ok("States.IntrinsicFailure"))
add(F, "States.Permissions is caught by States.ALL",
    {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}], "End": True},
        "H": {"Type": "Pass", "OutputPath": "$.Error", "End": True}}}, {}, ok("States.Permissions"),
    tasks={"work": [{"error": "States.Permissions", "cause": "denied"}]})
add(F, "Wait Seconds at the AWS maximum", one({"Type": "Wait", "Seconds": 99999999}), {"a": 1}, ok({"a": 1}))
add(F, "Task with Credentials and timeouts",
    one({"Type": "Task", "Resource": "echo", "TimeoutSeconds": 30, "HeartbeatSeconds": 10,
         "Credentials": {"RoleArn.$": "$.role"}}), {"role": "r"}, ok({"role": "r"}))
add(F, "a machine of several state types end to end",
    {"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"items.$": "States.ArrayRange(1, 4, 1)", "name.$": "$.name"}, "Next": "Fan"},
        "Fan": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"n.$": "$$.Map.Item.Value", "who.$": "$.name"},
                "ItemProcessor": {"StartAt": "Greet", "States": {"Greet": {"Type": "Pass",
                    "Parameters": {"s.$": "States.Format('{} #{}', $.who, $.n)"}, "OutputPath": "$.s", "End": True}}},
                "ResultPath": "$.greetings", "Next": "Count"},
        "Count": {"Type": "Choice", "Choices": [{"Variable": "$.greetings[3]", "IsPresent": True, "Next": "Done"}], "Default": "Bad"},
        "Bad": {"Type": "Fail", "Error": "TooFew"},
        "Done": {"Type": "Succeed", "OutputPath": "$.greetings"}}},
    {"name": "Ann"}, ok(["Ann #1", "Ann #2", "Ann #3", "Ann #4"]))


# ---------------------------------------------------------------------------
# Validation: definitions AWS rejects, and the problem code we must report
# ---------------------------------------------------------------------------
F = "validation.json"


def rejects(name, definition, code):
    add(F, name, definition, {}, invalid(code))


def accepts(name, definition, input=None, output=None):
    add(F, name, definition, input if input is not None else {}, ok(output if output is not None else (input if input is not None else {})))


rejects("missing StartAt", {"States": {"A": {"Type": "Succeed"}}}, "MISSING_FIELD")
rejects("missing States", {"StartAt": "A"}, "MISSING_FIELD")
rejects("States not an object", {"StartAt": "A", "States": []}, "INVALID_TYPE")
rejects("empty States", {"StartAt": "A", "States": {}}, "INVALID_VALUE")
rejects("StartAt names no state", {"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "UNKNOWN_START_AT")
rejects("Next names no state", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}}}, "UNKNOWN_NEXT")
rejects("Default names no state", {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [
    {"Variable": "$.x", "IsPresent": True, "Next": "B"}], "Default": "Nope"}, "B": {"Type": "Succeed"}}}, "UNKNOWN_NEXT")
rejects("Choice rule Next names no state", {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [
    {"Variable": "$.x", "IsPresent": True, "Next": "Nope"}]}}}, "UNKNOWN_NEXT")
rejects("Catch Next names no state", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True,
    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nope"}]}}}, "UNKNOWN_NEXT")
rejects("unreachable state", {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}, "UNREACHABLE_STATE")
rejects("neither Next nor End", {"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "MISSING_TRANSITION")
rejects("End false and no Next", {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": False}}}, "MISSING_TRANSITION")
rejects("both Next and End", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": True}, "B": {"Type": "Succeed"}}}, "CONFLICTING_TRANSITION")
rejects("Succeed with Next", {"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "B"}, "B": {"Type": "Succeed"}}}, "UNKNOWN_FIELD")
rejects("Fail with End", {"StartAt": "A", "States": {"A": {"Type": "Fail", "End": True}}}, "UNKNOWN_FIELD")
rejects("Choice with End", {"StartAt": "A", "States": {"A": {"Type": "Choice", "End": True, "Choices": [
    {"Variable": "$.x", "IsPresent": True, "Next": "B"}]}, "B": {"Type": "Succeed"}}}, "UNKNOWN_FIELD")
rejects("unknown state type", {"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": True}}}, "INVALID_STATE_TYPE")
rejects("missing Type", {"StartAt": "A", "States": {"A": {"End": True}}}, "MISSING_FIELD")
rejects("misspelt field", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Resutl": 1, "End": True}}}, "UNKNOWN_FIELD")
rejects("Task field on a Pass state", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Resource": "r", "End": True}}}, "UNKNOWN_FIELD")
rejects("ResultSelector on a Pass state", {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultSelector": {}, "End": True}}}, "UNKNOWN_FIELD")
rejects("Retry on a Pass state", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Retry": [], "End": True}}}, "UNKNOWN_FIELD")
rejects("Task without Resource", {"StartAt": "A", "States": {"A": {"Type": "Task", "End": True}}}, "MISSING_FIELD")
rejects("Resource not a string", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": 1, "End": True}}}, "INVALID_TYPE")
rejects("state name over 80 characters", {"StartAt": "A" * 81, "States": {"A" * 81: {"Type": "Succeed"}}}, "NAME_TOO_LONG")
accepts("state name of exactly 80 characters", {"StartAt": "A" * 80, "States": {"A" * 80: {"Type": "Succeed"}}})
rejects("Seconds with Timestamp", {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "End": True}}}, "MUTUALLY_EXCLUSIVE")
rejects("Seconds with SecondsPath", {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}}}, "MUTUALLY_EXCLUSIVE")
rejects("Wait without a duration", {"StartAt": "A", "States": {"A": {"Type": "Wait", "End": True}}}, "MISSING_FIELD")
rejects("Wait negative Seconds", {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": -1, "End": True}}}, "INVALID_VALUE")
rejects("Wait Seconds as a string", {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": "5", "End": True}}}, "INVALID_TYPE")
rejects("Wait invalid Timestamp", {"StartAt": "A", "States": {"A": {"Type": "Wait", "Timestamp": "2016-03-14 01:59", "End": True}}}, "INVALID_TIMESTAMP")
rejects("Wait SecondsPath not a reference path", {"StartAt": "A", "States": {"A": {"Type": "Wait", "SecondsPath": "$.a[*]", "End": True}}}, "INVALID_REFERENCE_PATH")
rejects("Error with ErrorPath", {"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}}, "MUTUALLY_EXCLUSIVE")
rejects("Cause with CausePath", {"StartAt": "A", "States": {"A": {"Type": "Fail", "Cause": "C", "CausePath": "$.c"}}}, "MUTUALLY_EXCLUSIVE")
rejects("ErrorPath not a path", {"StartAt": "A", "States": {"A": {"Type": "Fail", "ErrorPath": "oops"}}}, "INVALID_REFERENCE_PATH")
rejects("CausePath with a bad intrinsic", {"StartAt": "A", "States": {"A": {"Type": "Fail", "CausePath": "States.Format('{}'"}}}, "INVALID_INTRINSIC")
rejects("CausePath with an intrinsic that does not return a string", {"StartAt": "A", "States": {"A": {"Type": "Fail", "CausePath": "States.Array('a')"}}}, "INVALID_INTRINSIC")
rejects("TimeoutSeconds with TimeoutSecondsPath", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 5, "TimeoutSecondsPath": "$.t", "End": True}}}, "MUTUALLY_EXCLUSIVE")
rejects("HeartbeatSeconds not below TimeoutSeconds", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 5, "HeartbeatSeconds": 5, "End": True}}}, "INVALID_VALUE")
rejects("TimeoutSeconds zero", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 0, "End": True}}}, "INVALID_VALUE")
rejects("TimeoutSeconds fractional", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": 1.5, "End": True}}}, "INVALID_VALUE")
rejects("invalid InputPath", {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "a.b", "End": True}}}, "INVALID_PATH")
rejects("invalid OutputPath", {"StartAt": "A", "States": {"A": {"Type": "Pass", "OutputPath": "$.a[", "End": True}}}, "INVALID_PATH")
rejects("ResultPath with a wildcard", {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}}, "INVALID_REFERENCE_PATH")
rejects("ResultPath with a filter", {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[?(@.b)]", "End": True}}}, "INVALID_REFERENCE_PATH")
rejects("ResultPath into the context object", {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$$.Execution", "End": True}}}, "INVALID_REFERENCE_PATH")
rejects("ResultPath as a number", {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": 1, "End": True}}}, "INVALID_TYPE")
rejects("Parameters .$ with a literal", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"a.$": "literal"}, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("Parameters .$ with a number", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"a.$": 5}, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("Parameters .$ with a bad nested path", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x": {"a.$": "$.["}}, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("Parameters duplicate field (x and x.$)", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x": 1, "x.$": "$.x"}, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("Parameters not an object", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": [1], "End": True}}}, "INVALID_TYPE")
rejects("ResultSelector .$ inside an array", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "ResultSelector": {"l": [{"a.$": "nope"}]}, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("ItemSelector with a bad intrinsic", {"StartAt": "A", "States": {"A": {"Type": "Map", "ItemSelector": {"a.$": "States.Array("}, "ItemProcessor": PROC, "End": True}}}, "INVALID_PAYLOAD_TEMPLATE")
rejects("States.ALL not alone", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["States.ALL", "E"]}]}}}, "STATES_ALL_NOT_ALONE")
rejects("States.ALL retrier not last", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["E"]}]}}}, "STATES_ALL_NOT_LAST")
rejects("States.ALL catcher not last", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}, {"ErrorEquals": ["E"], "Next": "B"}]}, "B": {"Type": "Succeed"}}}, "STATES_ALL_NOT_LAST")
rejects("empty ErrorEquals", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": []}]}}}, "EMPTY_ERROR_EQUALS")
rejects("missing ErrorEquals", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"MaxAttempts": 1}]}}}, "MISSING_FIELD")
rejects("BackoffRate below 1", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["E"], "BackoffRate": 0.5}]}}}, "INVALID_VALUE")
rejects("negative MaxAttempts", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": -1}]}}}, "INVALID_VALUE")
rejects("IntervalSeconds zero", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 0}]}}}, "INVALID_VALUE")
rejects("invalid JitterStrategy", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["E"], "JitterStrategy": "HALF"}]}}}, "INVALID_VALUE")
rejects("unknown retrier field", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": [{"ErrorEquals": ["E"], "Interval": 1}]}}}, "UNKNOWN_FIELD")
rejects("catcher without Next", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Catch": [{"ErrorEquals": ["E"]}]}}}, "MISSING_FIELD")
rejects("Retry not an array", {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "r", "End": True, "Retry": {"ErrorEquals": ["E"]}}}}, "INVALID_TYPE")

C = lambda rules, extra=None: {"StartAt": "C", "States": {"C": dict({"Type": "Choice", "Choices": rules}, **(extra or {})), "N": {"Type": "Succeed"}}}
rejects("Choice rule with no comparison", C([{"Variable": "$.x", "Next": "N"}]), "INVALID_CHOICE_RULE")
rejects("Choice rule with two comparisons", C([{"Variable": "$.x", "StringEquals": "a", "IsPresent": True, "Next": "N"}]), "INVALID_CHOICE_RULE")
rejects("Choice rule without Next", C([{"Variable": "$.x", "IsPresent": True}], {"Default": "N"}), "MISSING_FIELD")
rejects("nested Choice rule with Next", C([{"Not": {"Variable": "$.x", "IsPresent": True, "Next": "N"}, "Next": "N"}]), "UNKNOWN_FIELD")
rejects("Choice rule without Variable", C([{"StringEquals": "a", "Next": "N"}]), "MISSING_FIELD")
rejects("Choice Variable not a path", C([{"Variable": "x", "StringEquals": "a", "Next": "N"}]), "INVALID_PATH")
rejects("StringEquals with a number", C([{"Variable": "$.x", "StringEquals": 1, "Next": "N"}]), "INVALID_TYPE")
rejects("NumericEquals with a string", C([{"Variable": "$.x", "NumericEquals": "1", "Next": "N"}]), "INVALID_TYPE")
rejects("BooleanEquals with a string", C([{"Variable": "$.x", "BooleanEquals": "true", "Next": "N"}]), "INVALID_TYPE")
rejects("IsNull with a string", C([{"Variable": "$.x", "IsNull": "true", "Next": "N"}]), "INVALID_TYPE")
rejects("TimestampEquals with an invalid timestamp", C([{"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "N"}]), "INVALID_TIMESTAMP")
rejects("StringEqualsPath not a path", C([{"Variable": "$.x", "StringEqualsPath": "abc", "Next": "N"}]), "INVALID_PATH")
rejects("StringMatchesPath does not exist", C([{"Variable": "$.x", "StringMatchesPath": "$.p", "Next": "N"}]), "UNKNOWN_FIELD")
rejects("unknown comparison operator", C([{"Variable": "$.x", "StringContains": "a", "Next": "N"}]), "INVALID_CHOICE_RULE")
rejects("empty And", C([{"And": [], "Next": "N"}]), "INVALID_CHOICE_RULE")
rejects("Not with an array", C([{"Not": [], "Next": "N"}]), "INVALID_TYPE")
rejects("empty Choices", C([], {"Default": "N"}), "INVALID_VALUE")
rejects("Choice without Choices", {"StartAt": "C", "States": {"C": {"Type": "Choice", "Default": "N"}, "N": {"Type": "Succeed"}}}, "MISSING_FIELD")

rejects("Parallel without Branches", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True}}}, "MISSING_FIELD")
rejects("Parallel with an empty branch list", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": True}}}, "INVALID_VALUE")
rejects("Parallel branch with a bad Next", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Outside"}}}]}, "Outside": {"Type": "Succeed"}}}, "UNKNOWN_NEXT")
rejects("Parallel branch state name reused", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}]}}}, "DUPLICATE_STATE_NAME")
rejects("Parallel branch with TimeoutSeconds", {"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": True, "Branches": [
    {"StartAt": "A", "TimeoutSeconds": 5, "States": {"A": {"Type": "Succeed"}}}]}}}, "UNKNOWN_FIELD")
rejects("Map without ItemProcessor", {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True}}}, "MISSING_FIELD")
rejects("Map with ItemProcessor and Iterator", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "Iterator": PROC, "End": True}}}, "MUTUALLY_EXCLUSIVE")
rejects("Map with ItemSelector and Parameters", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "ItemSelector": {}, "Parameters": {}, "End": True}}}, "MUTUALLY_EXCLUSIVE")
rejects("Map MaxConcurrency negative", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "MaxConcurrency": -1, "End": True}}}, "INVALID_VALUE")
rejects("Map ToleratedFailurePercentage over 100", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "ToleratedFailurePercentage": 101, "End": True}}}, "INVALID_VALUE")
rejects("Map invalid ProcessorConfig Mode", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": dict(PROC, ProcessorConfig={"Mode": "FAST"}), "End": True}}}, "INVALID_VALUE")
rejects("Map ItemsPath not a reference path", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "ItemsPath": "$.a[*]", "End": True}}}, "INVALID_REFERENCE_PATH")
rejects("Map processor with an unreachable state", {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {
    "StartAt": "I", "States": {"I": {"Type": "Succeed"}, "J": {"Type": "Succeed"}}}}}}, "UNREACHABLE_STATE")
rejects("Label over 40 characters", {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PROC, "Label": "L" * 41, "End": True}}}, "INVALID_VALUE")
accepts("QueryLanguage JSONata", {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, {"x": 1})
rejects("QueryLanguage unknown", {"QueryLanguage": "XPath", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, "INVALID_VALUE")
accepts("Assign on a JSONPath Pass", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"x": 1}, "End": True}}}, {"y": 2})
rejects("top-level TimeoutSeconds zero", {"TimeoutSeconds": 0, "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, "INVALID_VALUE")
rejects("unknown top-level field", {"Startat": "A", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, "UNKNOWN_FIELD")
rejects("no terminal state", {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}, "NO_TERMINAL_STATE")
rejects("definition is not an object", [1, 2], "INVALID_TYPE")
rejects("state is not an object", {"StartAt": "A", "States": {"A": "Succeed"}}, "INVALID_TYPE")

accepts("top-level Comment, Version, TimeoutSeconds, QueryLanguage JSONPath",
        {"Comment": "c", "Version": "1.0", "TimeoutSeconds": 60, "QueryLanguage": "JSONPath", "StartAt": "A",
         "States": {"A": {"Type": "Succeed", "Comment": "done", "QueryLanguage": "JSONPath"}}}, {"x": 1})
accepts("Comment on a Choice rule and on retriers/catchers",
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "echo", "Next": "C",
            "Retry": [{"ErrorEquals": ["E"], "Comment": "r"}], "Catch": [{"ErrorEquals": ["E"], "Next": "C", "Comment": "c"}]},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "D", "Comment": "rule"}], "Default": "D"},
            "D": {"Type": "Succeed"}}}, {"x": 1})
accepts("a loop with an exit is fine",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"done": True}, "Next": "B"},
         "B": {"Type": "Choice", "Choices": [{"Variable": "$.done", "BooleanEquals": False, "Next": "A"}], "Default": "E"},
         "E": {"Type": "Succeed"}}}, {}, {"done": True})
accepts("a Distributed Map with ItemReader and ResultWriter parses",
        {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "Label": "Batch",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV"}, "Parameters": {"Bucket": "b", "Key": "k"}},
            "ItemBatcher": {"MaxItemsPerBatch": 10}, "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
            "ItemProcessor": dict(PROC, ProcessorConfig={"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"})}}}, {}, [])
accepts("InputPath and OutputPath may use the context object",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$$.State", "OutputPath": "$.Name", "End": True}}}, {}, "A")


# ---------------------------------------------------------------------------
# JSONata ("Transforming data with JSONata in Step Functions"): QueryLanguage,
# Arguments, Output, Condition, Items, $states, AWS's functions.
# ---------------------------------------------------------------------------
F = "jsonata.json"


def jn(state, name="S"):
    """One JSONata state."""
    m = one(state, name)
    m["QueryLanguage"] = "JSONata"
    return m


def jrun(name, definition, input, expect, tasks=None):
    add(F, name, definition, input, expect, tasks)


jrun("Pass Output expression", jn({"Type": "Pass", "Output": "{% $states.input.a + $states.input.b %}"}), {"a": 1, "b": 2}, ok(3))
jrun("Pass Output object mixes literals and expressions at any depth",
     jn({"Type": "Pass", "Output": {"sum": "{% $sum($states.input.n) %}", "lit": "x", "deep": [1, "{% 2 * 3 %}", {"k": "{% $uppercase('a') %}"}]}}),
     {"n": [1, 2, 3]}, ok({"sum": 6, "lit": "x", "deep": [1, 6, {"k": "A"}]}))
jrun("Pass without Output passes its input", jn({"Type": "Pass"}), {"k": [1]}, ok({"k": [1]}))
jrun("a string that is not wholly {% %} is literal", jn({"Type": "Pass", "Output": {"a": "x {% 1 %}", "b": "{%1%}"}}), {}, ok({"a": "x {% 1 %}", "b": 1}))
jrun("Output can be a literal number", jn({"Type": "Pass", "Output": 42}), {}, ok(42))
jrun("a field whose expression has no value is left out", jn({"Type": "Pass", "Output": {"a": "{% $states.input.missing %}", "b": 1}}), {}, ok({"b": 1}))
jrun("a whole Output with no value is States.QueryEvaluationError", jn({"Type": "Pass", "Output": "{% $states.input.missing %}"}), {},
     err("States.QueryEvaluationError", cause_contains="returned no value"))
jrun("a failing expression is States.QueryEvaluationError naming the field", jn({"Type": "Pass", "Output": {"x": "{% $states.input.a + 'b' %}"}}), {"a": 1},
     err("States.QueryEvaluationError", cause_contains="specified for the field 'Output.x'"))
jrun("a function is not JSON", jn({"Type": "Pass", "Output": "{% function($v) { $v } %}"}), {}, err("States.QueryEvaluationError", cause_contains="function"))
jrun("numbers: a whole double is an integer, a fraction stays", jn({"Type": "Pass", "Output": ["{% 10 / 4 %}", "{% 10 / 5 %}", "{% $round(2.5) %}"]}), {}, ok([2.5, 2, 2]))
jrun("$states.context is the context object", jn({"Type": "Pass", "Output": "{% $states.context.State.Name & '@' & $states.context.Execution.Name %}"}, name="Here"), {}, ok("Here@exec-1"))
jrun("$now is the time the state was entered", jn({"Type": "Pass", "Output": "{% $now() %}"}), {}, ok("2024-01-01T00:00:01.000Z"))
jrun("a top-level JSONata machine makes every state JSONata",
     {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": "{% $states.input.v + 1 %}", "Next": "B"},
                                                           "B": {"Type": "Pass", "Output": "{% $states.input * 10 %}", "End": True}}}, {"v": 1}, ok(20))
jrun("JSONPath and JSONata states mix in one machine",
     {"StartAt": "P1", "States": {
         "P1": {"Type": "Pass", "Parameters": {"n.$": "$.v"}, "Next": "J"},
         "J": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": {"n": "{% $states.input.n * 2 %}"}, "Next": "P2"},
         "P2": {"Type": "Pass", "InputPath": "$.n", "End": True}}}, {"v": 21}, ok(42))

jrun("a binding made in one expression is not seen by the next",
     jn({"Type": "Pass", "Output": {"a": "{% ($x := 1; $x) %}", "b": "{% $exists($x) %}", "c": ["{% ($y := 2; $y) %}", "{% $exists($y) %}"]}}),
     {}, ok({"a": 1, "b": False, "c": [2, False]}))
jrun("a binding does not shadow a variable for the next expression",
     chain_j := {"QueryLanguage": "JSONata", "StartAt": "A", "States": {
         "A": {"Type": "Pass", "Assign": {"v": 5}, "Next": "B"},
         "B": {"Type": "Pass", "Output": {"a": "{% ($v := 1; $v) %}", "b": "{% $v %}"}, "End": True}}},
     {}, ok({"a": 1, "b": 5}))

# AWS's functions.
jrun("$partition", jn({"Type": "Pass", "Output": "{% $partition([1,2,3,4,5], 2) %}"}), {}, ok([[1, 2], [3, 4], [5]]))
jrun("$range", jn({"Type": "Pass", "Output": "{% $range(0, 10, 5) %}"}), {}, ok([0, 5, 10]))
jrun("$range counts down", jn({"Type": "Pass", "Output": "{% $range(3, 1, -1) %}"}), {}, ok([3, 2, 1]))
jrun("$hash", jn({"Type": "Pass", "Output": "{% $hash('input data', 'SHA-1') %}"}), {}, ok(hashlib.sha1(b"input data").hexdigest()))
jrun("$hash with an unknown algorithm", jn({"Type": "Pass", "Output": "{% $hash('x', 'CRC32') %}"}), {}, err("States.QueryEvaluationError", cause_contains="algorithm"))
jrun("$parse", jn({"Type": "Pass", "Output": "{% $parse($states.input.text).a %}"}), {"text": "{\"a\": [1, 2]}"}, ok([1, 2]))
jrun("$uuid is a v4 UUID", jn({"Type": "Pass", "Output": "{% $match($uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/).match ? true : false %}"}), {}, ok(True))
jrun("$random is in [0, 1)", jn({"Type": "Pass", "Output": "{% ($r := $random(); $r >= 0 and $r < 1) %}"}), {}, ok(True))
jrun("$random with a seed repeats", jn({"Type": "Pass", "Output": "{% $random(7) = $random(7) %}"}), {}, ok(True))

# Task: Arguments, Output, $states.result.
jt = lambda **f: {"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": dict({"Type": "Task", "Resource": "work", "End": True}, **f)}}
jrun("Task Arguments are the task's input; its result is the default output", jt(Arguments={"x": "{% $states.input.n * 2 %}", "k": "lit"}), {"n": 2}, ok({"x": 4, "k": "lit"}))
jrun("Task without Arguments sends the state input", jt(), {"n": 2}, ok({"n": 2}))
jrun("Task Output sees $states.input and $states.result",
     jt(Output={"in": "{% $states.input.n %}", "got": "{% $states.result.Payload %}"}), {"n": 1}, ok({"in": 1, "got": "p"}),
     tasks={"work": [{"result": {"Payload": "p"}}]})
jrun("$states used whole has all its fields", jt(Output="{% $keys($states) %}"), {}, ok(["input", "context", "result"]))
jrun("Task TimeoutSeconds and HeartbeatSeconds as expressions", jt(TimeoutSeconds="{% $states.input.t %}", HeartbeatSeconds="{% 5 %}"), {"t": 60}, ok({"t": 60}))
jrun("a TimeoutSeconds expression that is not a whole number", jt(TimeoutSeconds="{% 'soon' %}"), {}, err("States.QueryEvaluationError", cause_contains="non-negative integer"))

# Choice.
JC = {"QueryLanguage": "JSONata", "StartAt": "C", "States": {
    "C": {"Type": "Choice", "Default": "Other", "Choices": [
        {"Condition": "{% $states.input.n > 10 %}", "Next": "Big", "Output": {"size": "big"}},
        {"Condition": "{% $states.input.n > 5 %}", "Next": "Mid"}]},
    "Big": {"Type": "Succeed"}, "Mid": {"Type": "Pass", "Output": "mid", "End": True}, "Other": {"Type": "Pass", "Output": "other", "End": True}}}
jrun("Choice Condition picks the first true rule; a rule's Output is the output", JC, {"n": 11}, ok({"size": "big"}))
jrun("Choice without a rule Output passes the input on", JC, {"n": 6}, ok("mid"))
jrun("Choice Default", JC, {"n": 1}, ok("other"))
jrun("a Condition that is not a boolean is States.QueryEvaluationError",
     {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n %}", "Next": "D"}]}, "D": {"Type": "Succeed"}}},
     {"n": 1}, err("States.QueryEvaluationError", cause_contains="must return a boolean"))
jrun("no Condition true and no Default is States.NoChoiceMatched",
     {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Condition": "{% false %}", "Next": "D"}]}, "D": {"Type": "Succeed"}}},
     {}, err("States.NoChoiceMatched"))
jrun("a literal boolean Condition", {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Condition": True, "Next": "D"}]}, "D": {"Type": "Succeed"}}}, {"a": 1}, ok({"a": 1}))

# Wait, Succeed, Fail.
jrun("Wait Seconds expression and Output", jn({"Type": "Wait", "Seconds": "{% $states.input.s %}", "Output": "{% $states.input.s + 1 %}"}), {"s": 3}, ok(4))
jrun("Wait Timestamp expression", jn({"Type": "Wait", "Timestamp": "{% $states.input.at %}"}), {"at": "2030-01-01T00:00:00Z"}, ok({"at": "2030-01-01T00:00:00Z"}))
jrun("Wait Timestamp expression that is not a timestamp", jn({"Type": "Wait", "Timestamp": "{% 'tomorrow' %}"}), {}, err("States.QueryEvaluationError", cause_contains="date-time"))
jrun("Wait Seconds expression that is negative", jn({"Type": "Wait", "Seconds": "{% -1 %}"}), {}, err("States.QueryEvaluationError"))
jrun("Succeed Output", jn({"Type": "Succeed", "Output": {"done": "{% $states.input.id %}"}}), {"id": 7}, ok({"done": 7}))
jrun("Fail Error and Cause expressions", jn({"Type": "Fail", "Error": "{% 'Custom.' & $states.input.kind %}", "Cause": "{% $string($states.input.n) %}"}), {"kind": "Bad", "n": 3},
     err("Custom.Bad", cause="3"))
jrun("Fail literal Error in a JSONata state", jn({"Type": "Fail", "Error": "E", "Cause": "c"}), {}, err("E", cause="c"))

# Parallel and Map.
jrun("Parallel Arguments feed every branch; Output sees $states.result",
     jn({"Type": "Parallel", "Arguments": {"v": "{% $states.input.v %}"}, "Output": "{% $sum($states.result.v) %}", "Branches": [
         {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
         {"StartAt": "B", "States": {"B": {"Type": "Pass", "Output": {"v": "{% $states.input.v * 10 %}"}, "End": True}}}]}),
     {"v": 2}, ok(22))
jrun("Map Items expression, ItemSelector with the item and its index, Output",
     jn({"Type": "Map", "Items": "{% $states.input.orders[qty > 0] %}",
         "ItemSelector": {"sku": "{% $states.context.Map.Item.Value.sku %}", "i": "{% $states.context.Map.Item.Index %}", "tag": "{% $states.input.tag %}"},
         "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
         "Output": {"skus": "{% $states.result.sku %}", "n": "{% $count($states.result) %}", "last": "{% $states.result[-1] %}"}}),
     {"tag": "t", "orders": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}, {"sku": "c", "qty": 2}]},
     ok({"skus": ["a", "c"], "n": 2, "last": {"sku": "c", "i": 1, "tag": "t"}}))
jrun("Map Items as a literal array", jn({"Type": "Map", "Items": [1, 2, "{% 1 + 2 %}"], "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Output": "{% $states.input * 2 %}", "End": True}}}}),
     {}, ok([2, 4, 6]))
jrun("Map without Items iterates over the state input", jn({"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}), [1, 2], ok([1, 2]))
jrun("Map Items that are not an array", jn({"Type": "Map", "Items": "{% $states.input %}", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}),
     {"a": 1}, err("States.QueryEvaluationError", cause_contains="must be an array"))
jrun("Map MaxConcurrency and ToleratedFailurePercentage as expressions",
     jn({"Type": "Map", "MaxConcurrency": "{% 2 %}", "ToleratedFailurePercentage": "{% 50 %}", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}),
     [1], ok([1]))

# Catch.
jrun("Catch without Output passes the error output",
     {"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}]},
                                                           "H": {"Type": "Succeed"}}},
     {}, ok({"Error": "Oops", "Cause": "boom"}), tasks={"work": [{"error": "Oops", "cause": "boom"}]})
jrun("Catch Output sees $states.errorOutput and $states.input",
     {"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True,
         "Catch": [{"ErrorEquals": ["Oops"], "Next": "H", "Output": {"why": "{% $states.errorOutput.Cause %}", "was": "{% $states.input.id %}"}}]},
                                                           "H": {"Type": "Succeed"}}},
     {"id": 9}, ok({"why": "boom", "was": 9}), tasks={"work": [{"error": "Oops", "cause": "boom"}]})
jrun("a query error can be caught",
     {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Task", "Resource": "work", "Arguments": "{% $states.input.a.b.c + 'x' %}", "End": True,
         "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "H", "Output": "{% $states.errorOutput.Error %}"}]}, "H": {"Type": "Succeed"}}},
     {"a": {"b": {"c": 1}}}, ok("States.QueryEvaluationError"))

# Validation.
rejects_j = lambda name, definition, code: add(F, name, definition, {}, invalid(code))
rejects_j("a JSONPath field in a JSONata state", jn({"Type": "Pass", "InputPath": "$.a"}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("Parameters in a JSONata Task", jt(Parameters={"a": 1}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("ResultPath in a JSONata Task", jt(ResultPath="$.r"), "QUERY_LANGUAGE_MISMATCH")
rejects_j("SecondsPath in a JSONata Wait", jn({"Type": "Wait", "SecondsPath": "$.s"}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("ItemsPath in a JSONata Map", jn({"Type": "Map", "ItemsPath": "$.a", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("ResultPath in a JSONata catcher", {"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.e"}]}, "H": {"Type": "Succeed"}}}, "QUERY_LANGUAGE_MISMATCH")
rejects_j("Variable in a JSONata Choice rule", {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Variable": "$.a", "Next": "D"}]}, "D": {"Type": "Succeed"}}}, "QUERY_LANGUAGE_MISMATCH")
rejects_j("a JSONata Choice rule needs a Condition", {"QueryLanguage": "JSONata", "StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Next": "D"}]}, "D": {"Type": "Succeed"}}}, "MISSING_FIELD")
rejects_j("Output in a JSONPath state", one({"Type": "Pass", "Output": {"a": 1}}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("Arguments in a JSONPath Task", one({"Type": "Task", "Resource": "r", "Arguments": {"a": 1}}), "QUERY_LANGUAGE_MISMATCH")
rejects_j("Condition in a JSONPath Choice rule", {"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "D"}]}, "D": {"Type": "Succeed"}}}, "UNKNOWN_FIELD")
rejects_j("a JSONPath state in a JSONata machine", {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}}, "QUERY_LANGUAGE_MISMATCH")
rejects_j("an expression that does not parse", jn({"Type": "Pass", "Output": {"a": "{% $states.input.( %}"}}), "INVALID_JSONATA")
rejects_j("an empty expression", jn({"Type": "Pass", "Output": "{%  %}"}), "INVALID_JSONATA")
rejects_j("Seconds that is neither a number nor an expression", jn({"Type": "Wait", "Seconds": "ten"}), "INVALID_TYPE")
rejects_j("Items that is neither an array nor an expression", jn({"Type": "Map", "Items": {"a": 1}, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Succeed"}}}}), "INVALID_TYPE")
rejects_j("'.$' keys in a JSONata Assign", jn({"Type": "Pass", "Assign": {"x.$": "$.a"}}), "QUERY_LANGUAGE_MISMATCH")

# ---------------------------------------------------------------------------
# Workflow variables ("Passing data between states with variables"): Assign in both
# query languages, evaluation order, scopes, limits.
# ---------------------------------------------------------------------------
F = "variables.json"


def vrun(name, definition, input, expect, tasks=None):
    add(F, name, definition, input, expect, tasks)


def chain(*states, language=None):
    """States run in order; the last one ends."""
    names = [f"S{i}" for i in range(len(states))]
    out = {}
    for i, st in enumerate(states):
        st = dict(st)
        if st["Type"] not in ("Choice", "Succeed", "Fail"):
            if i + 1 < len(states):
                st["Next"] = names[i + 1]
            else:
                st["End"] = True
        out[names[i]] = st
    m = {"StartAt": names[0], "States": out}
    if language:
        m["QueryLanguage"] = language
    return m


vrun("JSONPath: Assign a literal and a path; read them later with $name",
     chain({"Type": "Pass", "Assign": {"lit": {"k": [1]}, "fromInput.$": "$.v"}},
           {"Type": "Pass", "Parameters": {"a.$": "$lit.k[0]", "b.$": "$fromInput", "c.$": "States.Format('{}-{}', $fromInput, $lit.k[0])"}}),
     {"v": "x"}, ok({"a": 1, "b": "x", "c": "x-1"}))
vrun("JSONPath: in a Task's Assign, $ is the result after ResultSelector",
     chain({"Type": "Task", "Resource": "work", "ResultSelector": {"p.$": "$.Payload"}, "Assign": {"got.$": "$.p"}, "ResultPath": None},
           {"Type": "Pass", "Parameters": {"got.$": "$got", "in.$": "$.id"}}),
     {"id": 5}, ok({"got": "pay", "in": 5}), tasks={"work": [{"result": {"Payload": "pay"}}]})
vrun("JSONPath: every Assign value sees the variables from before the state",
     chain({"Type": "Pass", "Assign": {"a": 1}}, {"Type": "Pass", "Assign": {"a": 2, "b.$": "$a"}}, {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b"}}),
     {}, ok({"a": 2, "b": 1}))
vrun("JSONPath: a Choice rule can test a variable",
     {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"limit": 3}, "Next": "C"},
                                 "C": {"Type": "Choice", "Choices": [{"Variable": "$limit", "NumericGreaterThan": 2, "Next": "Yes"}], "Default": "No"},
                                 "Yes": {"Type": "Pass", "Result": "yes", "End": True}, "No": {"Type": "Pass", "Result": "no", "End": True}}},
     {}, ok("yes"))
vrun("JSONPath: Choice state Assign and the taken rule's Assign",
     {"StartAt": "C", "States": {"C": {"Type": "Choice", "Assign": {"always": 1, "which": "state"},
                                       "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "D", "Assign": {"which": "rule", "v.$": "$.go"}}]},
                                 "D": {"Type": "Pass", "Parameters": {"always.$": "$always", "which.$": "$which", "v.$": "$v"}, "End": True}}},
     {"go": True}, ok({"always": 1, "which": "rule", "v": True}))
vrun("JSONPath: a catcher's Assign sees the error output as $",
     {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "work", "End": True,
                                       "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": None, "Assign": {"err.$": "$.Error"}}]},
                                 "H": {"Type": "Pass", "Parameters": {"err.$": "$err"}, "End": True}}},
     {}, ok({"err": "Oops"}), tasks={"work": [{"error": "Oops", "cause": "c"}]})
vrun("JSONPath: Wait Assign", chain({"Type": "Wait", "Seconds": 1, "Assign": {"w.$": "$.a"}}, {"Type": "Pass", "Parameters": {"w.$": "$w"}}), {"a": 4}, ok({"w": 4}))
vrun("JSONPath: reading a variable nobody set is States.Runtime", chain({"Type": "Pass", "Parameters": {"x.$": "$nope"}}), {},
     err("States.Runtime", cause_contains="there is no variable 'nope'"))
vrun("JSONata: Assign with $states.result, read later as $name",
     chain({"Type": "Task", "Resource": "work", "Assign": {"price": "{% $states.result.price %}", "qty": "{% $states.input.qty %}"}, "Output": {}},
           {"Type": "Pass", "Output": "{% $price * $qty %}"}, language="JSONata"),
     {"qty": 3}, ok(30), tasks={"work": [{"result": {"price": 10}}]})
vrun("JSONata: Assign and Output both see the values from before the state",
     chain({"Type": "Pass", "Assign": {"a": 1}}, {"Type": "Pass", "Assign": {"a": "{% $a + 1 %}", "b": "{% $a %}"}, "Output": "{% $a %}"},
           {"Type": "Pass", "Output": {"before": "{% $states.input %}", "a": "{% $a %}", "b": "{% $b %}"}}, language="JSONata"),
     {}, ok({"before": 1, "a": 2, "b": 1}))
vrun("JSONata: Choice rule Assign on top of the state's",
     {"QueryLanguage": "JSONata", "StartAt": "C", "States": {
         "C": {"Type": "Choice", "Assign": {"path": "default", "seen": True}, "Default": "D",
               "Choices": [{"Condition": "{% $states.input.n > 1 %}", "Next": "D", "Assign": {"path": "big"}}]},
         "D": {"Type": "Pass", "Output": {"path": "{% $path %}", "seen": "{% $seen %}"}, "End": True}}},
     {"n": 2}, ok({"path": "big", "seen": True}))
vrun("JSONata: a catcher's Assign sees $states.errorOutput",
     {"QueryLanguage": "JSONata", "StartAt": "T", "States": {
         "T": {"Type": "Task", "Resource": "work", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "Assign": {"why": "{% $states.errorOutput.Cause %}"}, "Output": {}}]},
         "H": {"Type": "Pass", "Output": "{% $why %}", "End": True}}},
     {}, ok("boom"), tasks={"work": [{"error": "E", "cause": "boom"}]})
vrun("variables cross from JSONPath states to JSONata states and back",
     {"StartAt": "P", "States": {
         "P": {"Type": "Pass", "Assign": {"x.$": "$.v"}, "Next": "J"},
         "J": {"Type": "Pass", "QueryLanguage": "JSONata", "Assign": {"y": "{% $x * 2 %}"}, "Next": "Q"},
         "Q": {"Type": "Pass", "Parameters": {"x.$": "$x", "y.$": "$y"}, "End": True}}},
     {"v": 4}, ok({"x": 4, "y": 8}))
PB = lambda branch_states, **extra: dict({"Type": "Parallel", "Branches": [{"StartAt": "B", "States": branch_states}]}, **extra)
vrun("a Parallel branch reads the variables around it",
     chain({"Type": "Pass", "Assign": {"outer": 7}},
           PB({"B": {"Type": "Pass", "Output": "{% $outer %}", "End": True}}, Output="{% $states.result[0] %}"), language="JSONata"),
     {}, ok(7))
vrun("a branch's own variables are gone after the Parallel",
     chain(PB({"B": {"Type": "Pass", "Assign": {"inner": 1}, "Next": "B2"}, "B2": {"Type": "Pass", "Output": "{% $inner %}", "End": True}}),
           {"Type": "Pass", "Output": {"got": "{% $states.input %}", "innerVisible": "{% $exists($inner) %}"}}, language="JSONata"),
     {}, ok({"got": [1], "innerVisible": False}))
vrun("a Map iteration reads the variables around it",
     chain({"Type": "Pass", "Assign": {"factor": 10}},
           {"Type": "Map", "Items": [1, 2], "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Output": "{% $states.input * $factor %}", "End": True}}}},
           language="JSONata"),
     {}, ok([10, 20]))
vrun("iterations have their own variables",
     chain({"Type": "Map", "Items": [1, 2, 3], "ItemProcessor": {"StartAt": "A", "States": {
         "A": {"Type": "Pass", "Assign": {"mine": "{% $states.input %}"}, "Next": "B"},
         "B": {"Type": "Pass", "Output": "{% $mine * 100 %}", "End": True}}}}, language="JSONata"),
     {}, ok([100, 200, 300]))
vrun("a distributed Map's iterations do not see outer variables",
     chain({"Type": "Pass", "Assign": {"x": 1}},
           {"Type": "Map", "Items": [1], "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                                                         "StartAt": "I", "States": {"I": {"Type": "Pass", "Assign": {"x": 2}, "Output": "{% $exists($x) %}", "End": True}}}},
           language="JSONata"),
     {}, ok([False]))
vrun("a JSONPath Map iteration reads outer variables in its ItemSelector",
     chain({"Type": "Pass", "Assign": {"tag": "t"}},
           {"Type": "Map", "ItemSelector": {"v.$": "$$.Map.Item.Value", "tag.$": "$tag"}, "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}}),
     [1], ok([{"v": 1, "tag": "t"}]))
vrun("one state may assign at most 256 KiB",
     chain({"Type": "Pass", "Assign": {"big": "{% $pad('', 270000, 'x') %}"}}, language="JSONata"), {}, err("States.Runtime", cause_contains="256 KiB"))
vrun("just under 256 KiB is fine",
     chain({"Type": "Pass", "Assign": {"big": "{% $pad('', 200000, 'x') %}"}}, {"Type": "Pass", "Output": "{% $length($big) %}"}, language="JSONata"), {}, ok(200000))
add(F, "a branch cannot assign an outer variable",
    chain({"Type": "Pass", "Assign": {"x": 1}}, PB({"B": {"Type": "Pass", "Assign": {"x": 2}, "End": True}})), {}, invalid("OUTER_VARIABLE_ASSIGNED"))
add(F, "a Map iteration cannot assign an outer variable",
    chain({"Type": "Pass", "Assign": {"x": 1}},
          {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Assign": {"x.$": "$"}, "End": True}}}}), {}, invalid("OUTER_VARIABLE_ASSIGNED"))
for bad_name in ["1x", "a-b", "states", "", "x" * 81]:
    add(F, f"'{bad_name[:12]}' cannot name a variable", chain({"Type": "Pass", "Assign": {bad_name: 1}}), {}, invalid("INVALID_VARIABLE_NAME"))
vrun("a variable name of 80 characters, with letters, digits and _", chain({"Type": "Pass", "Assign": {"_" + "a1" * 39 + "z": 1}}), {}, ok({}))
add(F, "Assign must be an object", chain({"Type": "Pass", "Assign": [1]}), {}, invalid("INVALID_TYPE"))


def main():
    for file, cases in FILES.items():
        with open(os.path.join(HERE, file), "w", encoding="utf-8") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")
    print(sum(len(c) for c in FILES.values()), "cases in", len(FILES), "files")


if __name__ == "__main__":
    main()

