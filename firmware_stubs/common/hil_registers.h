/* hil launcher Modbus register map (docs/PROTOCOLS.md section 4); must match drivers/registers.py (a test checks).
 *
 * Modbus registers are big-endian 16-bit words. A u64 spans HIL_U64_REGS consecutive registers, high word
 * first. ASCII fields are NUL padded, two bytes a register, the first byte in the high half.
 * Holding registers read back the last value written; a write with any value outside its HIL_*_MIN..MAX
 * range answers exception 03 and changes nothing. A write is applied in address order.
 *
 * A FIRE_SEQ write of s is checked in this order, the first failing check naming the reject:
 * s == 0 -> ZERO_SEQ; s == LAST_FIRE_SEQ -> DUPLICATE_SEQ; FAULT -> FAULT; not ARMED -> NOT_ARMED;
 * reloading -> RELOADING; no rounds -> NO_ROUNDS. Every FIRE_SEQ write sets LAST_CMD_T_US.
 */
#ifndef HIL_REGISTERS_H
#define HIL_REGISTERS_H

#define HIL_DEFAULT_DEVICE_ID 1u
#define HIL_IDENT_MAGIC 0x484Cu /* "HL" */
#define HIL_REGMAP_VERSION 1u
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
#define HIL_HR_FIRE_AZ_CDEG 4u  /* 0..HIL_FIRE_AZ_CDEG_MAX, clockwise from north */
#define HIL_HR_FIRE_EL_CDEG 5u  /* 0..HIL_FIRE_EL_CDEG_MAX */
#define HIL_HR_FIRE_SEQ 6u      /* the fire command; processed after the other registers of its write */
#define HIL_HR_RELOAD_MS 7u     /* HIL_RELOAD_MS_MIN..MAX */
#define HIL_HR_ROUNDS_LOADED 8u /* only in SAFE, else refused with HIL_REJECT_NOT_SAFE */
#define HIL_HR_COUNT 9u

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
#define HIL_IR_FW_NAME 24u          /* HIL_FW_NAME_REGS registers */
#define HIL_IR_BUILD_ID 32u         /* HIL_BUILD_ID_REGS registers */
#define HIL_IR_COUNT 36u

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
