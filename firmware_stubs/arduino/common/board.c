/* ATmega328P board support: Timer1 microsecond clock and 1 ms wake-up, interrupt-driven UART0 TX, idle sleep, the
 * watchdog off at reset. */
#include "board.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>

volatile uint8_t board_wake;
void (*board_tx_wait_hook)(void);

static volatile uint32_t t1_overflows;
static volatile uint8_t tx_head, tx_tail;
static uint8_t tx_ring[BOARD_TX_RING];

#define TICKS_PER_US (F_CPU / 8000000UL)
#define UBRR_VALUE ((F_CPU + HIL_BAUD * 4UL) / (HIL_BAUD * 8UL) - 1UL) /* with U2X, rounded */

/* Keep a watchdog reset from looping: after a WDT reset the AVR's watchdog stays on, so turn it off before main()
 * (each firmware turns it on again when it is ready). */
void early_wdt_off(void) __attribute__((naked, used, section(".init3")));
void early_wdt_off(void)
{
    MCUSR = 0;
    wdt_disable();
}

ISR(TIMER1_OVF_vect)
{
    t1_overflows++;
}

ISR(TIMER1_COMPA_vect)
{
    /* a periodic wake-up so the main loop sees its deadlines even when the line is quiet */
    OCR1A += (uint16_t)(BOARD_TICK_US * TICKS_PER_US);
}

ISR(USART_UDRE_vect)
{
    uint8_t tail = tx_tail;
    if (tail == tx_head) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
        return;
    }
    UDR0 = tx_ring[tail];
    tx_tail = (uint8_t)((tail + 1u) & (BOARD_TX_RING - 1u));
    board_wake = 1;
}

#if HIL_RS485_DE
/* An RS-485 transceiver's driver enable on PD4 (Arduino D4; not D2, whose INT0 level
 * detection makes simavr step every cycle while the pin is low): on while bytes go out, off once the last stop bit
 * has left, so the bus is free for the master's next request. */
ISR(USART_TX_vect)
{
    if (tx_tail == tx_head) {
        PORTD &= (uint8_t)~_BV(PD4);
        /* off until the next reply: a TXC flag left set must not re-enter this ISR */
        UCSR0B &= (uint8_t)~_BV(TXCIE0);
    }
}
#endif

void board_init(void)
{
    /* Timer1 free-running at F_CPU/8: 0.5 us ticks, overflow every 32.768 ms */
    TCCR1A = 0;
    TCCR1B = _BV(CS11);
    OCR1A = (uint16_t)(BOARD_TICK_US * TICKS_PER_US);
    TIMSK1 = _BV(TOIE1) | _BV(OCIE1A);

    /* U2X before UBRR: simavr derives the byte time when UBRR0L is written */
    UCSR0A = _BV(U2X0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);
    UBRR0H = (uint8_t)(UBRR_VALUE >> 8);
    UBRR0L = (uint8_t)UBRR_VALUE;
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
#if HIL_RS485_DE
    DDRD |= _BV(PD4);
    PORTD &= (uint8_t)~_BV(PD4);
#endif
    set_sleep_mode(SLEEP_MODE_IDLE);
    sei();
}

/* Timer1's overflow count, and in *count its count, read as one instant (interrupts off, restored after) */
static inline __attribute__((always_inline)) uint32_t timer1_read(uint16_t *count)
{
    uint8_t sreg = SREG;
    cli();
    uint32_t ovf = t1_overflows;
    uint16_t t = TCNT1;
    /* an overflow that happened after cli() has not been counted yet */
    if ((TIFR1 & _BV(TOV1)) && t < 0x8000u)
        ovf++;
    SREG = sreg;
    *count = t;
    return ovf;
}

uint32_t board_micros32(void)
{
    uint16_t t;
    uint32_t ovf = timer1_read(&t);
    return (ovf << 15) | (t / TICKS_PER_US);
}

uint64_t board_micros(void)
{
    uint16_t t;
    uint32_t ovf = timer1_read(&t);
    return ((uint64_t)ovf << 15) | (t / TICKS_PER_US);
}

void board_putc(uint8_t byte)
{
    uint8_t head = tx_head;
    uint8_t next = (uint8_t)((head + 1u) & (BOARD_TX_RING - 1u));
    while (next == tx_tail) {
        if (board_tx_wait_hook)
            board_tx_wait_hook();
        board_idle();
    }
    tx_ring[head] = byte;
    tx_head = next;
#if HIL_RS485_DE
    PORTD |= _BV(PD4);
    UCSR0A = _BV(U2X0) | _BV(TXC0); /* writing 1 clears a TXC left from the last reply */
    UCSR0B |= _BV(UDRIE0) | _BV(TXCIE0);
#else
    UCSR0B |= _BV(UDRIE0);
#endif
}

uint8_t board_tx_pending(void)
{
    return (uint8_t)((tx_head - tx_tail) & (BOARD_TX_RING - 1u));
}

void board_idle(void)
{
    cli();
    if (!board_wake) {
        sleep_enable();
        sei(); /* the instruction after sei runs before any interrupt: no wake-up is lost */
        sleep_cpu();
        sleep_disable();
    }
    board_wake = 0;
    sei();
}
