"""The baseline: a bare Flask "hello" route, served exactly like Nguồn in the benchmarks."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
