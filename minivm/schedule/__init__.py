"""Schedules as data: record a run's interleaving, replay it exactly, explore others."""

from minivm.schedule.control import ControlledPolicy, Director, Divergence
from minivm.schedule.model import Schedule, ScheduleFormatError, Turn, parse

__all__ = ["ControlledPolicy", "Director", "Divergence", "Schedule", "ScheduleFormatError", "Turn", "parse"]
