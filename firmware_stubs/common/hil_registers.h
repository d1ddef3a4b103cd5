/* hil launcher Modbus register map (docs/PROTOCOLS.md section 4); must match drivers/registers.py (a test checks).
 *
 * Modbus registers are big-endian 16-bit words. A u64 spans HIL_U64_REGS consecutive registers, high word
 * first. ASCII fields are NUL padded, two bytes a register, the first byte in the high half.
 * Holding registers read back the last value written; a write with any value outside its HIL_*_MIN..MAX
 * range answers exception 03 and changes nothing. A write is applied in address order.
 *
 * A fire is one FC16 write of the HIL_FIRE_BLOCK_REGS registers from HIL_FIRE_BLOCK (FIRE_TRACK..FIRE_CHECK).
 * A write touching FIRE_SEQ or FIRE_CHECK is a fire command, checked in this order, the first failing check
 * naming the reject: not exactly that block -> PARTIAL_FIRE; FIRE_CHECK != CRC-16/MODBUS of registers 3..8
 * as written (big-endian bytes, the CRC as a number) -> BAD_CHECK (both count BAD_CHECK_COUNT and change no
 * holding register); then values outside their ranges -> exception 03; then for s = FIRE_SEQ:
 * s == 0 -> ZERO_SEQ; s == LAST_FIRE_SEQ -> DUPLICATE_SEQ; FAULT -> FAULT; not ARMED -> NOT_ARMED;
 * reloading -> RELOADING; no rounds -> NO_ROUNDS. Every fire command answered sets LAST_CMD_T_US; one whose
 * check passed sets LAST_CMD_SEQ.
 */
#ifndef HIL_REGISTERS_H
#define HIL_REGISTERS_H

#define HIL_DEFAULT_DEVICE_ID 1u
#define HIL_IDENT_MAGIC 0x484Cu /* "HL" */
#define HIL_REGMAP_VERSION 2u
#define HIL_ARM_KEY 0xA55Au

/* function codes served; anything else answers HIL_EX_ILLEGAL_FUNCTION */
#define HIL_FC_READ_HOLDING 3u
#define HIL_FC_READ_INPUT 4u
#define HIL_FC_WRITE_SINGLE 6u
#define HIL_FC_WRITE_MULTIPLE 16u

/* exception codes */
#define HIL_EX_ILLEGAL_FUNCTION 1u
#define HIL_EX_ILLEGAL_DATA_ADDRESS 2u /* any register of the request outside the map */
#define HIL_EX_ILLEGAL_DATA_VALUE 3u   /* a value outside its range, or a bad count */

/* holding registers (FC 3, 6, 16) */
#define HIL_HR_HEARTBEAT 0u     /* any write feeds the watchdog */
#define HIL_HR_ARM_KEY 1u       /* HIL_ARM_KEY in SAFE arms; 0 makes SAFE; other values make SAFE + BAD_KEY */
#define HIL_HR_WATCHDOG_MS 2u   /* HIL_WATCHDOG_MS_MIN..MAX */
#define HIL_HR_FIRE_TRACK 3u
#define HIL_HR_FIRE_AZ_CDEG 4u   /* 0..HIL_FIRE_AZ_CDEG_MAX, clockwise from north */
#define HIL_HR_FIRE_EL_CDEG 5u   /* 0..HIL_FIRE_EL_CDEG_MAX */
#define HIL_HR_FIRE_RANGE_M 6u   /* slant range to the intercept point, m */
#define HIL_HR_FIRE_TGO_CS 7u    /* time to go to the intercept point, 1/100 s */
#define HIL_HR_FIRE_SEQ 8u       /* the fire command's sequence number */
#define HIL_HR_FIRE_CHECK 9u     /* CRC-16/MODBUS over registers 3..8, see above */
#define HIL_HR_RELOAD_MS 10u     /* HIL_RELOAD_MS_MIN..MAX */
#define HIL_HR_ROUNDS_LOADED 11u /* only in SAFE, else refused with HIL_REJECT_NOT_SAFE */
#define HIL_HR_COUNT 12u
#define HIL_FIRE_BLOCK 3u        /* a fire is one FC16 write of ... */
#define HIL_FIRE_BLOCK_REGS 7u   /* ... these registers: FIRE_TRACK..FIRE_CHECK */

/* input registers (FC 4) */
#define HIL_IR_IDENT_MAGIC 0u
#define HIL_IR_REGMAP_VERSION 1u
#define HIL_IR_FW_VERSION 2u /* major << 8 | minor */
#define HIL_IR_STATE 3u
#define HIL_IR_STATUS 4u
#define HIL_IR_ROUNDS_REMAINING 5u
#define HIL_IR_LAST_FIRE_SEQ 6u
#define HIL_IR_LAUNCH_COUNT 7u
#define HIL_IR_LAST_FIRE_TRACK 8u
#define HIL_IR_LAST_REJECT 9u
#define HIL_IR_REJECT_COUNT 10u
#define HIL_IR_FAULT_CODE 11u
#define HIL_IR_BOARD_TIME_US 12u    /* u64, sampled when the read is served */
#define HIL_IR_LAST_LAUNCH_T_US 16u /* u64 */
#define HIL_IR_LAST_CMD_T_US 20u    /* u64 */
#define HIL_IR_LAST_CMD_SEQ 24u     /* FIRE_SEQ of the last fire command whose check passed, accepted or not */
#define HIL_IR_BAD_CHECK_COUNT 25u  /* fire commands refused BAD_CHECK or PARTIAL_FIRE */
#define HIL_IR_WATCHDOG_TRIPS 26u   /* watchdog trips since power-on */
#define HIL_IR_LAST_FIRE_AZ_CDEG 27u /* the aim of the last accepted fire, as written */
#define HIL_IR_LAST_FIRE_EL_CDEG 28u
#define HIL_IR_LAST_FIRE_RANGE_M 29u
#define HIL_IR_LAST_FIRE_TGO_CS 30u
#define HIL_IR_FW_NAME 31u          /* HIL_FW_NAME_REGS registers */
#define HIL_IR_BUILD_ID 39u         /* HIL_BUILD_ID_REGS registers */
#define HIL_IR_COUNT 43u
#define HIL_IR_STATUS_REGS 24u      /* input 0..23: one read is a whole status */
#define HIL_IR_RECORD_REGS 31u      /* input 0..30: a status and the last fire's record */

#define HIL_U64_REGS 4u
#define HIL_FW_NAME_REGS 8u  /* 16 ASCII bytes */
#define HIL_BUILD_ID_REGS 4u /* 8 ASCII bytes */

/* STATE */
#define HIL_STATE_SAFE 0u
#define HIL_STATE_ARMED 1u
#define HIL_STATE_FAULT 2u

/* STATUS bits */
#define HIL_STATUS_ARMED 0x01u
#define HIL_STATUS_READY 0x02u            /* armed, not reloading, rounds > 0 */
#define HIL_STATUS_RELOADING 0x04u
#define HIL_STATUS_WATCHDOG_TRIPPED 0x08u /* latched until the next arm */
#define HIL_STATUS_FAULT 0x10u

/* LAST_REJECT */
#define HIL_REJECT_NONE 0u
#define HIL_REJECT_NOT_ARMED 1u
#define HIL_REJECT_RELOADING 2u
#define HIL_REJECT_NO_ROUNDS 3u
#define HIL_REJECT_DUPLICATE_SEQ 4u
#define HIL_REJECT_BAD_KEY 5u
#define HIL_REJECT_FAULT 6u
#define HIL_REJECT_ZERO_SEQ 7u
#define HIL_REJECT_NOT_SAFE 8u
#define HIL_REJECT_BAD_CHECK 9u
#define HIL_REJECT_PARTIAL_FIRE 10u

/* limits and power-on values */
#define HIL_WATCHDOG_MS_MIN 50u
#define HIL_WATCHDOG_MS_MAX 10000u
#define HIL_WATCHDOG_MS_DEFAULT 500u
#define HIL_RELOAD_MS_MIN 0u
#define HIL_RELOAD_MS_MAX 60000u
#define HIL_RELOAD_MS_DEFAULT 2000u
#define HIL_FIRE_AZ_CDEG_MAX 35999u
#define HIL_FIRE_EL_CDEG_MAX 9000u
#define HIL_ROUNDS_DEFAULT 4u

#endif /* HIL_REGISTERS_H */
