/* ATmega328P board support shared by the radar and launcher firmware: microsecond clock, UART0 TX, idle sleep. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#ifndef F_CPU
#error "F_CPU must be set by the Makefile"
#endif
#ifndef HIL_BAUD
#define HIL_BAUD 115200UL
#endif
#ifndef HIL_BUILD_ID
#define HIL_BUILD_ID "unknown"
#endif
#define HIL_FW_VERSION_MAJOR 1
#define HIL_FW_VERSION_MINOR 0

#define BOARD_TICK_US 1000u /* the main loop wakes at least this often */
#define BOARD_TX_RING 128u  /* power of two */

/* Set by an ISR that left work for the main loop; board_idle() will not sleep through it. */
extern volatile uint8_t board_wake;
/* Called while board_putc() waits for room in the TX ring (the radar drains its RX ring there). */
extern void (*board_tx_wait_hook)(void);

/* Timer1, UART0 (8N1 at HIL_BAUD, RX interrupt on), sleep mode; enables interrupts. */
void board_init(void);
/* Microseconds since power-on: Timer1 at F_CPU/8 plus its overflow count. Safe in an ISR. */
uint64_t board_micros(void);
/* The low 32 bits of board_micros(), cheaper (wraps every 71 minutes). Safe in an ISR. */
uint32_t board_micros32(void);
/* Queue one byte for UART0; waits (calling board_tx_wait_hook) while the ring is full. */
void board_putc(uint8_t byte);
/* Bytes queued and not yet handed to the UART. */
uint8_t board_tx_pending(void);
/* Sleep (idle mode) until the next interrupt unless an ISR set board_wake; clears board_wake. */
void board_idle(void);

#endif /* BOARD_H */
