-- Wireshark dissector for hil's serial framing (docs/PROTOCOLS.md §1): the radar link's frames in a hil recording.
--
-- Install (Wireshark 3.x/4.x, any OS with a per-user plugin folder):
--   mkdir -p ~/.local/lib/wireshark/plugins && cp "$(python -c 'import hil.records.recording as r; print(r.WIRESHARK_PLUGIN)')" ~/.local/lib/wireshark/plugins/
-- or for one tshark run: tshark -X lua_script:PATH/hil.lua -r RUN/recording.pcapng
--
-- A hil recording names this dissector ("hil") in each serial frame's upper-PDU header, so no Decode As is needed.
-- One buffer may hold any number of frames: 0x7E | stuffed(type u8 | seq u16 | t_us u64 | payload | crc u16) | 0x7E,
-- integers little-endian, the CRC (CRC-16/CCITT-FALSE over type..payload, unstuffed) big-endian. Each frame is shown
-- unstuffed in a tab of its own with its CRC checked; an ASTERIX frame's payload goes to Wireshark's ASTERIX dissector.

local bit = bit32 or bit -- Lua 5.2 (Wireshark up to 4.2) has bit32; Wireshark also ships the BitOp "bit" module

local hil = Proto("hil", "hil serial framing")

local frame_types = {
    [0x01] = "ASTERIX", [0x02] = "STIMULUS", [0x03] = "SENSOR_CONFIG",
    [0x10] = "TIME_SYNC_REQ", [0x11] = "TIME_SYNC_RESP", [0x20] = "IDENT_REQ", [0x21] = "IDENT_RESP",
    [0x30] = "STATUS", [0x7F] = "LOG",
}
local crc_status = { [0] = "Bad", [1] = "Good" }

local f = {
    ftype = ProtoField.uint8("hil.type", "Frame type", base.HEX, frame_types),
    seq = ProtoField.uint16("hil.seq", "Sequence number", base.DEC),
    t_us = ProtoField.uint64("hil.t_us", "Sender time (µs)", base.DEC),
    payload_len = ProtoField.uint16("hil.payload_len", "Payload length", base.DEC),
    payload = ProtoField.bytes("hil.payload", "Payload"),
    crc = ProtoField.uint16("hil.crc", "CRC-16/CCITT-FALSE", base.HEX),
    crc_status = ProtoField.uint8("hil.crc.status", "CRC status", base.DEC, crc_status),
    discarded = ProtoField.uint32("hil.discarded", "Bytes outside any frame", base.DEC),
    -- STIMULUS
    stim_flags = ProtoField.uint8("hil.stimulus.flags", "Flags", base.HEX),
    stim_start = ProtoField.bool("hil.stimulus.start", "START (a new truth set)", 8, nil, 0x01),
    stim_end = ProtoField.bool("hil.stimulus.end", "END (the set is complete)", 8, nil, 0x02),
    stim_count = ProtoField.uint8("hil.stimulus.count", "Records", base.DEC),
    target_id = ProtoField.uint16("hil.stimulus.target_id", "Target id", base.DEC),
    mode3a = ProtoField.uint16("hil.stimulus.mode3a", "Mode 3/A", base.OCT, { [0xFFFF] = "none" }),
    x = ProtoField.float("hil.stimulus.x", "x east (m)"),
    y = ProtoField.float("hil.stimulus.y", "y north (m)"),
    z = ProtoField.float("hil.stimulus.z", "z up (m)"),
    vx = ProtoField.float("hil.stimulus.vx", "vx (m/s)"),
    vy = ProtoField.float("hil.stimulus.vy", "vy (m/s)"),
    vz = ProtoField.float("hil.stimulus.vz", "vz (m/s)"),
    -- SENSOR_CONFIG
    seed = ProtoField.uint32("hil.config.seed", "Seed", base.DEC),
    sac = ProtoField.uint8("hil.config.sac", "SAC", base.DEC),
    sic = ProtoField.uint8("hil.config.sic", "SIC", base.DEC),
    sectors = ProtoField.uint8("hil.config.sectors", "Sectors per scan", base.DEC),
    -- clock sync, identity, status, log
    token = ProtoField.uint32("hil.sync.token", "Token", base.DEC),
    board_rx_us = ProtoField.uint64("hil.sync.board_rx_us", "Board receive time (µs)", base.DEC),
    board_tx_us = ProtoField.uint64("hil.sync.board_tx_us", "Board reply time (µs)", base.DEC),
    ident = ProtoField.string("hil.ident", "Identity (name;version;build)"),
    plots_sent = ProtoField.uint32("hil.status.plots_sent", "Plots sent", base.DEC),
    frames_rx = ProtoField.uint32("hil.status.frames_rx", "Frames received", base.DEC),
    frames_rejected = ProtoField.uint32("hil.status.frames_rejected", "Frames rejected", base.DEC),
    overruns = ProtoField.uint32("hil.status.overruns", "Overruns", base.DEC),
    log = ProtoField.string("hil.log", "Log text"),
}
-- SENSOR_CONFIG's twelve f32, in order (docs/PROTOCOLS.md §1)
local config_floats = {
    { "site_x", "Site x east (m)" }, { "site_y", "Site y north (m)" }, { "site_z", "Site z up (m)" },
    { "scan_period_s", "Scan period (s)" }, { "sigma_range_m", "Range sigma (m)" },
    { "sigma_azimuth_rad", "Azimuth sigma (rad)" }, { "sigma_elevation_rad", "Elevation sigma (rad)" },
    { "sigma_range_rate_mps", "Range-rate sigma (m/s)" }, { "pd", "Probability of detection" },
    { "clutter_per_scan", "Clutter plots per scan" }, { "max_range_m", "Maximum range (m)" },
    { "iff_reply_p", "IFF reply probability" },
}
for _, c in ipairs(config_floats) do
    f["config_" .. c[1]] = ProtoField.float("hil.config." .. c[1], c[2])
end
f.north_offset_rad = ProtoField.float("hil.config.north_offset_rad", "North offset (rad)")

local fields = {}
for _, v in pairs(f) do fields[#fields + 1] = v end
hil.fields = fields

local e_crc = ProtoExpert.new("hil.crc.bad", "Bad CRC", expert.group.CHECKSUM, expert.severity.ERROR)
local e_short = ProtoExpert.new("hil.short", "Frame shorter than its 13-byte header and CRC",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_escape = ProtoExpert.new("hil.escape", "Escape byte right before a flag", expert.group.MALFORMED,
    expert.severity.ERROR)
local e_layout = ProtoExpert.new("hil.layout", "Payload does not match its frame type's layout",
    expert.group.MALFORMED, expert.severity.WARN)
hil.experts = { e_crc, e_short, e_escape, e_layout }

local asterix = Dissector.get("asterix")

local function crc16_ccitt_false(bytes, n)
    local crc = 0xFFFF
    for i = 0, n - 1 do
        crc = bit.bxor(crc, bit.lshift(bytes:get_index(i), 8))
        for _ = 1, 8 do
            if bit.band(crc, 0x8000) ~= 0 then
                crc = bit.band(bit.bxor(bit.lshift(crc, 1), 0x1021), 0xFFFF)
            else
                crc = bit.band(bit.lshift(crc, 1), 0xFFFF)
            end
        end
    end
    return crc
end

local function ascii(tvb)
    if tvb:len() == 0 then return "" end
    return tvb:raw()
end

local function payload_tree(ftype, p, pinfo, tree, item)
    local n = p:len()
    local function expect(size)
        if n ~= size then item:add_proto_expert_info(e_layout, string.format("%d bytes, expected %d", n, size)) end
        return n == size
    end
    if ftype == 0x01 then
        if asterix ~= nil and n > 0 then asterix:call(p:tvb(), pinfo, tree) end
        return ""
    elseif ftype == 0x02 then
        if n < 2 then expect(2); return "" end
        local count = p(1, 1):uint()
        local flags = p(0, 1)
        local ft = item:add_le(f.stim_flags, flags)
        ft:add(f.stim_start, flags)
        ft:add(f.stim_end, flags)
        item:add(f.stim_count, p(1, 1))
        if not expect(2 + 28 * count) then return string.format(" %d records", count) end
        for k = 0, count - 1 do
            local r = p(2 + 28 * k, 28)
            local rt = item:add(hil, r, string.format("Target %d", r(0, 2):le_uint()))
            rt:add_le(f.target_id, r(0, 2))
            rt:add_le(f.mode3a, r(2, 2))
            local names = { f.x, f.y, f.z, f.vx, f.vy, f.vz }
            for j = 1, 6 do rt:add_le(names[j], r(4 * j, 4)) end
        end
        return string.format(" %d records%s%s", count, bit.band(flags:uint(), 1) ~= 0 and " START" or "",
            bit.band(flags:uint(), 2) ~= 0 and " END" or "")
    elseif ftype == 0x03 then
        if not expect(60) then return "" end
        for k, c in ipairs(config_floats) do item:add_le(f["config_" .. c[1]], p(4 * (k - 1), 4)) end
        item:add_le(f.seed, p(48, 4))
        item:add(f.sac, p(52, 1))
        item:add(f.sic, p(53, 1))
        item:add(f.sectors, p(54, 1))
        item:add_le(f.north_offset_rad, p(56, 4))
        return string.format(" SAC %d SIC %d", p(52, 1):uint(), p(53, 1):uint())
    elseif ftype == 0x10 then
        if not expect(4) then return "" end
        item:add_le(f.token, p(0, 4))
        return " token " .. p(0, 4):le_uint()
    elseif ftype == 0x11 then
        if not expect(20) then return "" end
        item:add_le(f.token, p(0, 4))
        item:add_le(f.board_rx_us, p(4, 8))
        item:add_le(f.board_tx_us, p(12, 8))
        return " token " .. p(0, 4):le_uint()
    elseif ftype == 0x20 then
        expect(0)
        return ""
    elseif ftype == 0x21 then
        if n > 0 then item:add(f.ident, p(0, n)) end
        return " " .. ascii(p)
    elseif ftype == 0x30 then
        if not expect(16) then return "" end
        item:add_le(f.plots_sent, p(0, 4))
        item:add_le(f.frames_rx, p(4, 4))
        item:add_le(f.frames_rejected, p(8, 4))
        item:add_le(f.overruns, p(12, 4))
        return ""
    elseif ftype == 0x7F then
        if n > 0 then item:add(f.log, p(0, n)) end
        return " " .. ascii(p)
    end
    return ""
end

-- one frame's content (between its flags, still stuffed) at [first, last] of buf: unstuff, check, show
local function dissect_frame(buf, first, last, pinfo, tree)
    local content = ByteArray.new()
    content:set_size(last - first + 1)
    local n, escaped = 0, false
    for i = first, last do
        local b = buf(i, 1):uint()
        if escaped then
            content:set_index(n, bit.bxor(b, 0x20)); n = n + 1; escaped = false
        elseif b == 0x7D then
            escaped = true
        else
            content:set_index(n, b); n = n + 1
        end
    end
    content:set_size(n)
    local item = tree:add(hil, buf(first - 1, last - first + 3), "hil frame")
    if escaped then
        item:add_proto_expert_info(e_escape)
        return "escape error"
    end
    if n < 13 then
        item:add_proto_expert_info(e_short, string.format("Frame of %d bytes is shorter than 13", n))
        return "short frame"
    end
    local u = content:tvb("Unstuffed hil frame")
    local ftype, seq = u(0, 1):uint(), u(1, 2):le_uint()
    local name = frame_types[ftype] or string.format("type 0x%02x", ftype)
    item:append_text(string.format(", %s, seq %d", name, seq))
    item:add(f.ftype, u(0, 1))
    item:add_le(f.seq, u(1, 2))
    item:add_le(f.t_us, u(3, 8))
    item:add(f.payload_len, n - 13):set_generated()
    local got, want = u(n - 2, 2):uint(), crc16_ccitt_false(content, n - 2)
    local crc_item = item:add(f.crc, u(n - 2, 2))
    crc_item:add(f.crc_status, u(n - 2, 2), got == want and 1 or 0):set_generated()
    if got ~= want then
        crc_item:add_proto_expert_info(e_crc, string.format("CRC 0x%04x, computed 0x%04x", got, want))
        return name .. " seq " .. seq .. " [bad CRC]"
    end
    local info = ""
    if n > 13 then
        local p = u(11, n - 13)
        item:add(f.payload, p)
        info = payload_tree(ftype, p, pinfo, tree, item)
    end
    return name .. " seq " .. seq .. info
end

function hil.dissector(buf, pinfo, tree)
    local len = buf:len()
    if len == 0 then return 0 end
    pinfo.cols.protocol = "hil"
    local root = tree:add(hil, buf(), "hil serial framing")
    local infos, start, outside = {}, nil, 0
    for i = 0, len - 1 do
        if buf(i, 1):uint() == 0x7E then
            if start ~= nil and i > start then
                infos[#infos + 1] = dissect_frame(buf, start, i - 1, pinfo, root)
            end
            start = i + 1
        elseif start == nil then
            outside = outside + 1
        end
    end
    if start ~= nil and start < len then outside = outside + (len - start) end -- an unclosed frame
    if outside > 0 then root:add(f.discarded, outside):set_generated() end
    if #infos > 0 then pinfo.cols.info = table.concat(infos, "; ") end
    return len
end

-- live captures of a radar link carried over UDP: "Decode As… hil" on the port
DissectorTable.get("udp.port"):add_for_decode_as(hil)
