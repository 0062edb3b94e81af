// Embeds the tiktoken rank files into the library, read-only, between the
// start and end symbols that vocab_data.h declares. The Makefile puts the
// verified files on the include path (-I$(BUILD)/gen/vocab).

        .section .rodata
        .balign 64
        .global embedpipe_cl100k_base_tiktoken
        .global embedpipe_cl100k_base_tiktoken_end
embedpipe_cl100k_base_tiktoken:
        .incbin "cl100k_base.tiktoken"
embedpipe_cl100k_base_tiktoken_end:

        .balign 64
        .global embedpipe_o200k_base_tiktoken
        .global embedpipe_o200k_base_tiktoken_end
embedpipe_o200k_base_tiktoken:
        .incbin "o200k_base.tiktoken"
embedpipe_o200k_base_tiktoken_end:

        // No executable stack.
        .section .note.GNU-stack,"",@progbits
