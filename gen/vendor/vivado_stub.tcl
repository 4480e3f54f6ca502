# Vivado command stubs: a dry run of build.tcl under plain tclsh (no Vivado needed).
#
#   VIVADO_STUB_LOG=calls.jsonl tclsh: source vivado_stub.tcl; source build.tcl
#
# Every Vivado command build.tcl calls is defined here; each call is appended to $VIVADO_STUB_LOG as one JSON
# array per line: ["command", "arg1", ...]. A command not defined here is an error (a typo in the script, or a
# command this dry run does not know), and so is a pin or cell name handed to get_bd_* that no create_bd_cell made.
# Knobs (environment): STUB_BOARD_PARTS - board parts get_board_parts knows (space separated, default none);
# STUB_FAIL_RUN - a run whose PROGRESS stays at 42%; STUB_INVALID_BD - validate_bd_design raises an error;
# STUB_IOPLL_MHZ - the PS7's IO PLL frequency (default 1000) from which FCLK0 is divided.

set ::stub_log [open $::env(VIVADO_STUB_LOG) w]
set ::stub_cells {}

proc ::stub_env {name {default ""}} {
    if {[info exists ::env($name)]} { return $::env($name) }
    return $default
}

proc ::stub_json {s} {
    set out ""
    foreach ch [split $s ""] {
        scan $ch %c code
        if {$ch eq "\""} { append out "\\\"" } elseif {$ch eq "\\"} { append out "\\\\" } \
        elseif {$code < 32} { append out [format "\\u%04x" $code] } else { append out $ch }
    }
    return "\"$out\""
}

proc ::stub_record {args} {
    set items {}
    foreach a $args { lappend items [::stub_json $a] }
    puts $::stub_log "\[[join $items ,]\]"
    flush $::stub_log
}

# the objects build.tcl hands around are plain names; get_bd_* check that the cell exists
proc ::stub_object {path} {
    set cell [lindex [split [string trimleft $path /] /] 0]
    if {[lsearch -exact $::stub_cells $cell] < 0} { error "stub: no block-design cell '$cell' (for '$path')" }
    return "/[string trimleft $path /]"
}

proc ::stub_last {arglist} { return [lindex $arglist end] }

rename exit ::stub_real_exit
proc exit {{code 0}} { ::stub_record exit $code; close $::stub_log; ::stub_real_exit $code }

proc unknown {cmd args} { error "stub: '$cmd' is not a stubbed Vivado command" }

# ---- project and files ----
proc create_project {args} { ::stub_record create_project {*}$args; return [lindex $args 0] }
proc current_project {args} { ::stub_record current_project {*}$args; return project }
proc current_fileset {args} { ::stub_record current_fileset {*}$args; return sources_1 }
proc get_board_parts {args} {
    ::stub_record get_board_parts {*}$args
    set pattern [::stub_last $args]
    set found {}
    foreach p [::stub_env STUB_BOARD_PARTS] { if {[string match $pattern $p]} { lappend found $p } }
    return $found
}
proc set_property {args} {
    ::stub_record set_property {*}$args
    if {[lindex $args 0] eq "-dict"} {
        foreach {k v} [lindex $args 1] { set ::stub_props([::stub_last $args],$k) $v }
    }
    return ""
}
# FCLK0 as the PS7 IP computes it: the IO PLL divided by two divisors 1..63, nearest to the requested frequency
proc ::stub_fclk {want} {
    set pll [::stub_env STUB_IOPLL_MHZ 1000]
    set best ""
    for {set d0 1} {$d0 <= 63} {incr d0} {
        for {set d1 1} {$d1 <= 63} {incr d1} {
            set f [expr {double($pll) / ($d0 * $d1)}]
            if {$best eq "" || abs($f - $want) < abs($best - $want)} { set best $f }
        }
    }
    return [format %.6f $best]
}
proc add_files {args} {
    ::stub_record add_files {*}$args
    # files Vivado itself makes (/stub/...) aside, every source must exist
    foreach f [::stub_last $args] {
        if {![string match /stub/* $f] && ![file exists $f]} { error "stub: add_files: no file $f" }
    }
    return ""
}
proc set_msg_config {args} { ::stub_record set_msg_config {*}$args }
proc update_compile_order {args} { ::stub_record update_compile_order {*}$args }
proc get_files {args} { ::stub_record get_files {*}$args; return "/stub/[::stub_last $args]" }

# ---- block design ----
proc create_bd_design {args} { ::stub_record create_bd_design {*}$args; return [::stub_last $args] }
proc create_bd_cell {args} {
    ::stub_record create_bd_cell {*}$args
    set name [::stub_last $args]
    lappend ::stub_cells $name
    return "/$name"
}
proc apply_bd_automation {args} { ::stub_record apply_bd_automation {*}$args }
proc make_bd_intf_pins_external {args} { ::stub_record make_bd_intf_pins_external {*}$args }
proc get_bd_cells {args} { ::stub_record get_bd_cells {*}$args; return [::stub_object [::stub_last $args]] }
proc get_bd_pins {args} { ::stub_record get_bd_pins {*}$args; return [::stub_object [::stub_last $args]] }
proc get_bd_intf_pins {args} { ::stub_record get_bd_intf_pins {*}$args; return [::stub_object [::stub_last $args]] }
proc get_bd_addr_spaces {args} { ::stub_record get_bd_addr_spaces {*}$args; return [::stub_object [::stub_last $args]] }
proc get_bd_addr_segs {args} { ::stub_record get_bd_addr_segs {*}$args; return [::stub_object [::stub_last $args]] }
proc connect_bd_net {args} { ::stub_record connect_bd_net {*}$args }
proc connect_bd_intf_net {args} { ::stub_record connect_bd_intf_net {*}$args }
proc assign_bd_address {args} { ::stub_record assign_bd_address {*}$args }
proc validate_bd_design {args} {
    ::stub_record validate_bd_design {*}$args
    if {[::stub_env STUB_INVALID_BD] ne ""} { error "stub: block design invalid" }
}
proc save_bd_design {args} { ::stub_record save_bd_design {*}$args }
proc generate_target {args} { ::stub_record generate_target {*}$args }
proc make_wrapper {args} { ::stub_record make_wrapper {*}$args; return "/stub/hdl/system_wrapper.v" }

# ---- runs and outputs ----
proc get_runs {args} { ::stub_record get_runs {*}$args; return [::stub_last $args] }
proc reset_run {args} { ::stub_record reset_run {*}$args }
proc launch_runs {args} { ::stub_record launch_runs {*}$args }
proc wait_on_run {args} { ::stub_record wait_on_run {*}$args }
proc get_property {args} {
    ::stub_record get_property {*}$args
    set prop [lindex $args end-1]
    set obj [::stub_last $args]
    switch -- $prop {
        PROGRESS { return [expr {$obj eq [::stub_env STUB_FAIL_RUN] ? "42%" : "100%"}] }
        STATUS { return [expr {$obj eq [::stub_env STUB_FAIL_RUN] ? "Running" : "$obj Complete!"}] }
        DIRECTORY { return "/stub/runs/$obj" }
        STATS.WNS { return 0.25 }
        CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ { return [::stub_fclk $::stub_props($obj,CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ)] }
        default { error "stub: get_property $prop is not stubbed" }
    }
}
proc open_run {args} { ::stub_record open_run {*}$args }
proc report_utilization {args} { ::stub_record report_utilization {*}$args }
proc report_timing_summary {args} { ::stub_record report_timing_summary {*}$args }
proc write_bitstream {args} { ::stub_record write_bitstream {*}$args }
proc write_hw_platform {args} { ::stub_record write_hw_platform {*}$args }
