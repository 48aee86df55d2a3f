-- twilio_numbers 0.3 -> 0.4 (ALTER EXTENSION twilio_numbers UPDATE TO '0.4')
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION twilio_numbers UPDATE TO '0.4'" to load this file. \quit
