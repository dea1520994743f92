"""Importers: vendor export files (Apple Health, Garmin FIT, Fitbit Takeout, Dexcom Clarity)
turned into messages of our own wire forms. Parsers are pure readers of a byte stream; the
CLI and the upload route publish what they yield, and the worker judges it like any message.
"""
