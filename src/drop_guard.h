/*
 * drop_guard.h — the guard on DROP EXTENSION twilio_numbers (drop_guard.c).
 */
#ifndef TWILIO_NUMBERS_DROP_GUARD_H
#define TWILIO_NUMBERS_DROP_GUARD_H

extern void drop_guard_init(void);

#endif							/* TWILIO_NUMBERS_DROP_GUARD_H */
