"""The decision core: pure functions of numbers, with no Django, no ORM, no clock.

``routing`` decides what happens to one case, ``gate`` whether a policy change may be
made, ``stats`` the bounds, calibration and agreement measures behind both.
"""
