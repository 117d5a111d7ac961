"""Plug in your own ability: here the knowledge comes from a SQL table instead of the RAG store.

An ability is any object with the Protocol's one method (``Knowledge.retrieve(query, k)``,
``Logic.propose(request)``, ``Wording.word(task, answer, steps, evidence)``); dca checks it
when the agent is built. ``lookup(...)`` steps then read numbers from your rows and cite them.

    python agents/examples/custom_ability.py
"""
import sqlite3

import dca
from agents.examples.scripted import Plan


class SqlKnowledge:
    """Rows of a (metric, year, value) table, ranked by the share of the query's words they hold."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def retrieve(self, query: str, k: int = 5) -> list[dca.Evidence]:
        words = set(query.lower().split())
        rows = self.db.execute("SELECT rowid, metric, year, value FROM facts")
        return sorted((dca.Evidence(f"facts:{row}", f"{metric} {year}: {value}", source="facts table",
                                    score=len(words & {*metric.split(), str(year)}) / len(words), metadata={"row": row})
                       for row, metric, year, value in rows), key=lambda e: -e.score)[:k]


db = sqlite3.connect(":memory:", check_same_thread=False)  # agents may run in worker threads
db.execute("CREATE TABLE facts (metric TEXT, year INTEGER, value REAL)")
db.executemany("INSERT INTO facts VALUES (?, ?, ?)", [("net revenue", 2015, 5829), ("net revenue", 2014, 5735)])
agent = dca.Agent(knowledge=SqlKnowledge(db), logic=Plan(
    ["x1 = lookup('net revenue 2015')", "x2 = lookup('net revenue 2014')", "answer = (x1 - x2) / x2 * 100"]))

if __name__ == "__main__":
    print(agent.run("By what percent did net revenue change from 2014 to 2015?").text)
