"""Who may serve a queue, and the order each strategy ranks its ready agents in.

Each strategy is a sort key over an agent's figures; the ACD keeps every
queue's ready agents sorted by it (``ranked.Ranked``), so picking an agent is
taking the first one that has not declined the item. Round-robin is the one
rotation: its key is the agent's fixed ordinal, and the pick starts after the
ordinal offered last in that queue.
"""

from __future__ import annotations

from collections.abc import Mapping

from routing.ranked import Key
from routing.specs import AgentSpec, QueueSpec, Strategy


def serves(queue: QueueSpec, agent: AgentSpec) -> bool:
    """The agent lists the queue and meets every one of its skill minimums."""
    if queue.name not in agent.queues:
        return False
    required = queue.required_skills.items()
    return all(agent.skills.get(skill, 0) >= level for skill, level in required)


def skill_score(queue: QueueSpec, skills: Mapping[str, int]) -> int:
    """Skill-weighted's measure: the sum of the agent's levels in the queue's required skills.

    A queue that requires none is scored by the agent's skill named like the queue
    (an agent with skill ``billing: 8`` ranks above ``billing: 3`` in queue ``billing``).
    """
    if queue.required_skills:
        return sum(skills.get(skill, 0) for skill in queue.required_skills)
    return skills.get(queue.name, 0)


def agent_key(
    strategy: Strategy, *, idle_since: float, calls_taken: int, score: int, ordinal: int
) -> Key:
    """The sort key of a ready agent in a queue with ``strategy``: smallest is offered first.

    Ties fall to the agent idle longest, then to the one added first (``ordinal``).
    Ring-all rings everyone, so its order only decides the order of the Offers.
    """
    if strategy is Strategy.ROUND_ROBIN:
        return (ordinal,)
    if strategy is Strategy.LEAST_CALLS:
        return (calls_taken, idle_since, ordinal)
    if strategy is Strategy.SKILL_WEIGHTED:
        return (-score, idle_since, ordinal)
    return (idle_since, ordinal)  # LONGEST_IDLE, RING_ALL
