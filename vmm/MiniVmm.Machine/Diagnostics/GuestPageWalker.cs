using MiniVmm.Core.Memory;

namespace MiniVmm.Machine.Diagnostics;

/// <summary>
/// Translates a guest virtual address through the guest's own page tables (diagnostics only: the faulting instruction
/// of an emulation failure). Handles no paging, 32-bit paging, PAE and 4-level long mode with large pages; every table
/// read goes through bounds-checked <see cref="GuestMemory"/>, so garbage tables yield "not translatable", not a crash.
/// </summary>
public static class GuestPageWalker
{
    private const ulong Present = 1, LargePage = 1UL << 7;
    private const ulong AddressMask = 0x000f_ffff_ffff_f000;

    public static bool TryTranslate(GuestMemory memory, ulong cr0, ulong cr3, ulong cr4, ulong efer, ulong virt, out ulong phys)
    {
        phys = 0;
        bool paging = (cr0 & (1UL << 31)) != 0;
        if (!paging) { phys = virt & 0xffff_ffff; return true; }
        bool pae = (cr4 & (1UL << 5)) != 0;
        bool longMode = (efer & (1UL << 10)) != 0;
        if (!pae)
        {
            if (!TryReadU32(memory, (cr3 & 0xffff_f000) + ((virt >> 22) & 0x3ff) * 4, out uint pde) || (pde & 1) == 0) return false;
            if ((pde & (1u << 7)) != 0 && (cr4 & (1UL << 4)) != 0) { phys = (pde & 0xffc0_0000u) | (virt & 0x3f_ffff); return true; }
            if (!TryReadU32(memory, (pde & 0xffff_f000u) + ((virt >> 12) & 0x3ff) * 4, out uint pte) || (pte & 1) == 0) return false;
            phys = (pte & 0xffff_f000u) | (virt & 0xfff);
            return true;
        }

        int levels = longMode ? 4 : 3;
        ulong table = longMode ? cr3 & AddressMask : cr3 & 0xffff_ffe0;
        for (int level = levels; level >= 1; level--)
        {
            int shift = 12 + 9 * (level - 1);
            ulong index = (virt >> shift) & (level == 3 && !longMode ? 0x3UL : 0x1ffUL);
            if (!TryReadU64(memory, table + index * 8, out ulong entry) || (entry & Present) == 0) return false;
            if (level <= 3 && level > 1 && (entry & LargePage) != 0)
            {
                ulong pageMask = (1UL << shift) - 1;
                phys = (entry & AddressMask & ~pageMask) | (virt & pageMask);
                return true;
            }
            table = entry & AddressMask;
        }
        phys = table | (virt & 0xfff);
        return true;
    }

    private static bool TryReadU64(GuestMemory m, ulong gpa, out ulong value)
    {
        value = 0;
        if (!m.Contains(new GuestAddress(gpa), 8)) return false;
        value = m.Read<ulong>(new GuestAddress(gpa));
        return true;
    }

    private static bool TryReadU32(GuestMemory m, ulong gpa, out uint value)
    {
        value = 0;
        if (!m.Contains(new GuestAddress(gpa), 4)) return false;
        value = m.Read<uint>(new GuestAddress(gpa));
        return true;
    }
}
